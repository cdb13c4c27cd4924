package clusterhead_test

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// TestBackupRefusalThroughSocket: 'iotguard ledger backup' against a
// running CH whose ledger has no online backup (a CometBFT CH) gets the
// reason through the control socket, not a cut connection (EOF).
func TestBackupRefusalThroughSocket(t *testing.T) {
	dir := t.TempDir()
	chtest.Start(t, dir, func(c *clusterhead.Config) {
		c.NoAdmin = false // the control socket, as serve has
		c.Ledger = func(keys *keysvc.Service, _ func(uint64, int)) (ledger.Ledger, error) {
			l, err := ledger.Open(filepath.Join(dir, clusterhead.LedgerFile), ledger.Options{Cluster: chtest.Cluster, Signer: keys, Verifier: keys})
			return wrapped{l}, err
		}
	})
	read := 0
	err := admin.Backup(chtest.Ctx(t), dir, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		read += len(b)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), clusterhead.ErrBackupUnsupported.Error()) {
		t.Fatalf("backup through the control socket: %v, want %q", err, clusterhead.ErrBackupUnsupported)
	}
	if read != 0 {
		t.Fatalf("the refused backup streamed %d bytes", read)
	}
}
