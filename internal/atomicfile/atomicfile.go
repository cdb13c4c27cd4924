// Package atomicfile writes files all at once: readers see the old content or
// the new, never a torn write, even across a crash.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Write replaces path with data, created with mode perm, via a synced
// temporary file in the same directory and a rename.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// Create is Write that fails with fs.ErrExist if path exists, even when
// another process creates it meanwhile: the temporary file is hard-linked
// into place, which never replaces.
func Create(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Link)
}

// CreateFrom is Create with the content streamed by fill, for files too big
// to hold in memory. If fill or any step fails, nothing is left at path (nor
// a temporary file) and the error says which step failed.
func CreateFrom(path string, perm os.FileMode, fill func(io.Writer) error) error {
	return place(path, perm, fill, os.Link)
}

// tmpPrefix is the start of the name of path's temporary files.
func tmpPrefix(path string) string { return "." + filepath.Base(path) + ".tmp" }

// removeLeftovers removes path's temporary files that no process holds
// locked: those of writers that died. What it cannot open, lock or remove
// stays, as it was.
func removeLeftovers(path string) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), tmpPrefix(path)) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil { // no writer holds it
			_ = os.Remove(f.Name())
		}
		f.Close() // releases the lock
	}
}

// begin removes path's leftovers and creates its temporary file, locked
// while it is written and put in place, so that removeLeftovers tells it
// from a dead writer's. Both happen under an exclusive lock on the
// directory: otherwise another writer's removeLeftovers, between this
// file's creation and its lock, would find it unlocked and remove it.
func begin(path string) (*os.File, error) {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("failed to open the directory of %s: %w", path, err)
	}
	defer dir.Close() // releases the directory's lock
	if err := syscall.Flock(int(dir.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("failed to lock the directory of %s: %w", path, err)
	}
	removeLeftovers(path)
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix(path)+"*")
	if err != nil {
		return nil, fmt.Errorf("failed to create temporary file for %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("failed to lock temporary file for %s: %w", path, err)
	}
	return f, nil
}

func write(path string, data []byte, perm os.FileMode, put func(tmp, path string) error) error {
	return place(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, put)
}

// place writes path through a temporary file beside it. A temporary file
// of path that an earlier writer left behind, killed before it could remove
// it (SIGKILL, a power loss), is removed first: it may hold a copy of a
// secret (a key file, a backup holding the CH key). One that a writer
// running now is writing is locked (flock) and left alone.
func place(path string, perm os.FileMode, fill func(io.Writer) error, put func(tmp, path string) error) error {
	f, err := begin(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	defer f.Close()      // after the put: the lock on it holds until then
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("failed to set mode of %s: %w", path, err)
	}
	if err := fill(f); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", path, err)
	}
	if err := put(tmp, path); err != nil {
		return fmt.Errorf("failed to put %s in place: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", path, err)
	}
	// The new name is durable only once its directory is: before, a power
	// loss can bring the old file back (for a device file, a sequence number
	// already used: a nonce used again).
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("failed to sync the directory of %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the names in dir durable (the entries linked, renamed or
// removed there), for a caller that puts files in place by itself.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
