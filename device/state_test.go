package device_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/secretfile"
)

// TestLoadStateRefusesOpenFile: the device file holds the device's private
// key. Save writes it 0600; one that group or others may read is refused
// with the chmod that fixes it.
func TestLoadStateRefusesOpenFile(t *testing.T) {
	path := newFile(t, "sensor-k")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("device file: %v, %v; want mode 0600", st, err)
	}
	if _, err := device.LoadState(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := device.LoadState(path)
	if !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+path) || st != nil {
		t.Fatalf("LoadState of a 0644 device file = %v, %v; want ErrPermissions with chmod 600", st, err)
	}
}
