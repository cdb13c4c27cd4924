package admin_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/internal/secretfile"
)

// TestListenRefusesOpenDirectory: the control socket exists with the
// umask's mode until it is restricted, so it is made only in a directory
// that group and others cannot enter; another is refused, no socket made.
func TestListenRefusesOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := admin.Listen(dir, nil)
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("Listen in a 0750 directory = %v, want ErrPermissions with chmod 700", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, admin.SocketName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a socket was made: %v", err)
	}
}

// TestListenSocketMode: in a 0700 directory the socket is 0600.
func TestListenSocketMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := admin.Listen(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Lstat(filepath.Join(dir, admin.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a 0600 socket", st.Mode())
	}
}
