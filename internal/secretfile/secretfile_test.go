package secretfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/secretfile"
)

// TestRead: a secret file is read only when no group or other bit is set;
// a refusal names the file and the chmod that fixes it, and leaves the file
// alone.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o700, true},
		{0o640, false}, {0o644, false}, {0o604, false}, {0o660, false}, {0o601, false}, {0o610, false}, {0o666, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			b, err := secretfile.Read(path)
			switch {
			case tc.ok && (err != nil || string(b) != "secret"):
				t.Fatalf("Read = %q, %v; want the content", b, err)
			case !tc.ok && (!errors.Is(err, secretfile.ErrPermissions) || b != nil ||
				!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600 "+path)):
				t.Fatalf("Read = %q, %v; want ErrPermissions naming %s and chmod 600", b, err, path)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != tc.mode {
				t.Errorf("file touched: %v, %v", st, err)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := secretfile.Read(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read(missing) = %v, want fs.ErrNotExist", err)
	}
}

// TestCheckDir: a directory holding secrets is accepted only when no group
// or other bit is set.
func TestCheckDir(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o700, true}, {0o500, true},
		{0o750, false}, {0o755, false}, {0o710, false}, {0o701, false}, {0o705, false}, {0o770, false}, {0o777, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			err := secretfile.CheckDir(dir)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("CheckDir: %v", err)
			case !tc.ok && (!errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+dir)):
				t.Fatalf("CheckDir = %v; want ErrPermissions with chmod 700 %s", err, dir)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := secretfile.CheckDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("CheckDir(a file) = %v", err)
	}
}
