package clusterhead_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/secretfile"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// TestLedgerWithoutItsKey: a data directory whose ledger lost its key file,
// or holds another key, is refused at start with both files named; the key
// is not replaced and the ledger is not touched. Regression: a missing
// ch-key.pem was silently created anew and the ledger served under it.
func TestLedgerWithoutItsKey(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	chtest.Joined(t, ch, "sensor-a")
	height := chtest.Height(t, ch)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	keyPath, ledgerPath := filepath.Join(dir, keysvc.KeyFile), filepath.Join(dir, clusterhead.LedgerFile)
	ledgerBytes, err := os.ReadFile(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	start := func() error {
		_, err := clusterhead.Start(clusterhead.Config{Listen: "127.0.0.1:0", DataDir: dir, NoAdmin: true,
			Cluster: cluster.Config{ID: chtest.Cluster, Position: chtest.Here, Radius: 1000}})
		return err
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if b, err := os.ReadFile(ledgerPath); err != nil || string(b) != string(ledgerBytes) {
			t.Errorf("the ledger file changed (%v)", err)
		}
	}

	t.Run("missing", func(t *testing.T) {
		if err := os.Remove(keyPath); err != nil {
			t.Fatal(err)
		}
		err := start()
		if !errors.Is(err, keysvc.ErrNoKey) || !strings.Contains(err.Error(), keyPath) || !strings.Contains(err.Error(), ledgerPath) {
			t.Fatalf("start = %v, want ErrNoKey naming %s and %s", err, keyPath, ledgerPath)
		}
		if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a key was created: %v", err)
		}
		unchanged(t)
	})
	t.Run("another key", func(t *testing.T) {
		if _, err := keysvc.Open(dir, chtest.Cluster); err != nil { // a fresh key in its place
			t.Fatal(err)
		}
		err := start()
		if !errors.Is(err, ledger.ErrWrongKey) || !strings.Contains(err.Error(), keyPath) || !strings.Contains(err.Error(), ledgerPath) {
			t.Fatalf("start = %v, want ErrWrongKey naming %s and %s", err, keyPath, ledgerPath)
		}
		unchanged(t)
	})
	t.Run("its key", func(t *testing.T) {
		if err := os.WriteFile(keyPath, key, 0o600); err != nil {
			t.Fatal(err)
		}
		ch := chtest.Start(t, dir)
		if h := chtest.Height(t, ch); h != height {
			t.Fatalf("height %d after restoring the key", h)
		}
	})
}

// TestStartRefusesOpenDataDir: an existing data directory that group or
// others may enter (it holds the CH keys and the control socket) stops the
// start with the chmod that fixes it; nothing is written into it.
func TestStartRefusesOpenDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := clusterhead.Start(clusterhead.Config{Listen: "127.0.0.1:0", DataDir: dir,
		Cluster: cluster.Config{ID: chtest.Cluster, Position: chtest.Here, Radius: 1000}})
	if !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("start on a 0755 data directory = %v, want ErrPermissions with chmod 700", err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("the refused start wrote %v (%v)", entries, err)
	}
	// A directory the CH creates is 0700, and it starts there.
	fresh := filepath.Join(dir, "new")
	chtest.Start(t, fresh)
	if st, err := os.Stat(fresh); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("created data directory: %v, %v; want mode 0700", st, err)
	}
}
