package clusterhead_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/logtest"
	"github.com/iotguard/iotguard/internal/secretfile"
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

// TestBackupRefusedWhileRotationUnfinished: a serving CH whose rotation is
// on the ledger but whose key files could not be moved (FinishRotation
// failed: here ch-keys-retired.pem was a directory) refuses a backup, whose
// keys would not match its ledger and would not restore, and says to
// restart the server; after a restart the backup is taken and restores.
func TestBackupRefusedWhileRotationUnfinished(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir, func(c *clusterhead.Config) { c.NoAdmin = false })
	chtest.Joined(t, ch, "sensor-a")
	retired := filepath.Join(dir, keysvc.RetiredFile)
	if err := os.Mkdir(retired, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.RotateKey(chtest.Ctx(t)); err == nil {
		t.Fatal("rotation whose key files cannot be written succeeded")
	}
	if err := os.Remove(retired); err != nil {
		t.Fatal(err)
	}
	backup := func() (bytes.Buffer, error) {
		var archive bytes.Buffer
		err := admin.Backup(chtest.Ctx(t), dir, func(r io.Reader) error {
			_, err := io.Copy(&archive, r)
			return err
		})
		return archive, err
	}
	archive, err := backup()
	if err == nil || !strings.Contains(err.Error(), "key rotation is unfinished") {
		t.Fatalf("backup with the rotation's key files unmoved: %v, want a refusal", err)
	}
	if archive.Len() != 0 {
		t.Fatalf("the refused backup streamed %d bytes", archive.Len())
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	chtest.Start(t, dir, func(c *clusterhead.Config) { c.NoAdmin = false })
	if archive, err = backup(); err != nil {
		t.Fatalf("backup after the restart: %v", err)
	}
	if _, err := clusterhead.Restore(&archive, filepath.Join(t.TempDir(), "restored"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusesOpenDirectory: a restore into an existing directory
// that group or others may enter (0755) is refused before any key is
// written there, with the chmod that fixes it: a CH would refuse to start
// there anyway, and the keys would have sat in it meanwhile.
func TestRestoreRefusesOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	var archive bytes.Buffer
	if err := ch.Backup(chtest.Ctx(t), &archive); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	_, err := clusterhead.Restore(&archive, open, nil)
	if !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+open) {
		t.Fatalf("restore into a 0755 directory: %v, want ErrPermissions with chmod 700", err)
	}
	entries, err := os.ReadDir(open)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the refused restore left %s", e.Name())
	}
}

// stalledReader is the reader of a backup archive that stops reading after
// its first 4 KiB, inside the ledger's copy (a slow disk, a suspended 'ledger
// backup'), until release is closed, and keeps what it read. stalled is
// closed when it stops.
type stalledReader struct {
	stalled, release chan struct{}
	once             sync.Once
	got              bytes.Buffer
}

func (s *stalledReader) Write(p []byte) (int, error) {
	if s.got.Len() > 4096 {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
	}
	return s.got.Write(p)
}

// TestBackupDoesNotStallJoins: while the reader of an online backup has
// stopped reading, devices still join, until the ledger file has doubled:
// its commits, which must then grow the file's memory map, never wait for
// the backup (they once did, answered 5.03 after the request timeout). The
// archive, once read, is whole and restores.
func TestBackupDoesNotStallJoins(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir, chtest.Open)
	chtest.Joined(t, ch, "before-backup")
	r := &stalledReader{stalled: make(chan struct{}), release: make(chan struct{})}
	released := sync.OnceFunc(func() { close(r.release) })
	t.Cleanup(released) // before the CH's close, which a stalled commit would block
	done := make(chan error, 1)
	go func() { done <- ch.Backup(chtest.Ctx(t), r) }()
	select {
	case <-r.stalled:
	case err := <-done:
		t.Fatalf("backup ended before its reader stalled: %v", err)
	}
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, clusterhead.LedgerFile))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	start := size()
	t.Logf("ledger file %d bytes at the stall", start)
	for i := 0; size() < 2*start; i++ {
		if i == 5000 {
			t.Fatalf("5,000 joins did not double the ledger file (%d bytes)", size())
		}
		chtest.Joined(t, ch, fmt.Sprintf("during-backup-%d", i))
	}
	select {
	case err := <-done:
		t.Fatalf("backup ended while its reader was stalled: %v", err)
	default:
	}
	released()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, err := clusterhead.Restore(&r.got, filepath.Join(t.TempDir(), "restored"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Height < 1 {
		t.Fatalf("restored height %d, want the join before the backup", info.Height)
	}
}

// TestBackupRemovesStaleSpool: the temporary copy of the ledger that a CH
// killed during a backup left in its data directory goes at the next
// backup, so that crashes do not pile up copies of the ledger there.
func TestBackupRemovesStaleSpool(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	stale := filepath.Join(dir, ".backup-ledger.db-123456")
	if err := os.WriteFile(stale, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ch.Backup(chtest.Ctx(t), io.Discard); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".backup-") {
			t.Errorf("after a backup the data directory holds %s", e.Name())
		}
	}
}
