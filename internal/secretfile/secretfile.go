// Package secretfile owns one rule: a file that holds a private key, and a
// directory that holds such files, may be used only when no one but their
// owner can read, write or enter them (no group or other permission bit).
// The CH key files, the device file, the fleet private key and the CH's
// data directory (with its control socket) all go through it.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrPermissions is returned for a secret file or directory whose mode
// gives group or others any access. The error names the path and the
// chmod that fixes it.
var ErrPermissions = errors.New("permissions too open")

// open is the mode bits a secret file or directory must not have.
const open fs.FileMode = 0o077

// Read returns the content of the secret file at path, refusing (an error
// wrapping ErrPermissions) a file that group or others may access. The mode
// is checked on the opened file, so the file read is the file checked. Other
// errors are the os package's (errors.Is(err, fs.ErrNotExist) holds for a
// missing file).
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // an *fs.PathError: it names path
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&open != 0 {
		return nil, fmt.Errorf("key file %w (want 0600): %s is %v; run chmod 600 %s", ErrPermissions, path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	return b, nil
}

// CheckDir refuses (an error wrapping ErrPermissions) a directory that group
// or others may access: what it holds — key files, a control socket that
// exists for a moment with the umask's mode — is then out of their reach
// whatever the modes of the files themselves.
func CheckDir(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("failed to check directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("failed to use %s: not a directory", path)
	}
	if st.Mode().Perm()&open != 0 {
		return fmt.Errorf("directory %w (want 0700): %s is %v; run chmod 700 %s", ErrPermissions, path, st.Mode(), path)
	}
	return nil
}
