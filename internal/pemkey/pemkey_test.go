package pemkey_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/pemkey"
	"github.com/iotguard/iotguard/internal/secretfile"
)

// TestReadPrivatePermissions: a fleet private key that group or others may
// read is refused with the chmod that fixes it; CreatePrivate writes 0600.
func TestReadPrivatePermissions(t *testing.T) {
	k, err := pemkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.pem")
	if err := pemkey.CreatePrivate(path, k); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("created key: %v, %v; want mode 0600", st, err)
	}
	got, err := pemkey.ReadPrivate(path)
	if err != nil || !got.Equal(k) {
		t.Fatalf("ReadPrivate of a 0600 key: %v", err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := pemkey.ReadPrivate(path); !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("ReadPrivate of a 0640 key = %v, want ErrPermissions with chmod 600", err)
	}
}
