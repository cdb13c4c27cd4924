package clusterhead_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/logtest"
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

// TestBackupLogged: a backup through the control socket is logged with the
// height it copied, since the archive is a copy of the CH private key and
// nothing else (the ledger, the metrics) records that it was taken.
func TestBackupLogged(t *testing.T) {
	dir := t.TempDir()
	rec := &logtest.Records{}
	ch := chtest.Start(t, dir, func(c *clusterhead.Config) {
		c.NoAdmin = false
		c.Logger = rec.Logger()
	})
	head, _, err := ch.Ledger.Head()
	if err != nil {
		t.Fatal(err)
	}
	var archive int64
	if err := admin.Backup(chtest.Ctx(t), dir, func(r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		archive = n
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var logged []slog.Record
	for _, r := range rec.At(slog.LevelInfo) {
		if strings.HasPrefix(r.Message, "backup taken") {
			logged = append(logged, r)
		}
	}
	if len(logged) != 1 {
		t.Fatalf("%d 'backup taken' lines at Info, want 1", len(logged))
	}
	attrs := map[string]string{}
	logged[0].Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	if attrs["height"] != fmt.Sprint(head.Height) || attrs["bytes"] != fmt.Sprint(archive) {
		t.Errorf("backup logged %v, want height %d and bytes %d", attrs, head.Height, archive)
	}
}
