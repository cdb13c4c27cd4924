package clusterhead

import (
	"archive/tar"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/internal/counting"
	"github.com/iotguard/iotguard/internal/secretfile"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// A backup is a tar archive of a data directory, in this order:
//
//	ch-key.pem       the CH private key (and, after rotations, the keys it replaced)
//	rekeys.db        a consistent copy of the record of members that re-keyed
//	                 after a rotation (keysvc.RekeyFile); absent when none has.
//	                 A re-key recorded after it is taken is lost in a restore:
//	                 that member's old K_m opens again until it next speaks
//	                 under its new one
//	backup.json      a BackupInfo: cluster, height and head hash of the copy
//	ledger.db        a consistent copy of the ledger file (ledger.Bolt.Backup)
//	grants.db        a consistent copy of the grant log, taken after the
//	                 ledger's (ledger.GrantLog.Backup); absent when the CH
//	                 has none. A batch it holds that the ledger copy does not
//	                 is committed when the restored CH starts
//	                 (ledger.RecoverGrants).
//
// Every entry has mode 0600. IMPORTANT: the archive holds the CH private
// key; keep it like ch-key.pem itself. Restore puts the ledger in place
// before the keys (Restore says why).
const backupInfoName = "backup.json"

// BackupInfo describes a backup.
type BackupInfo struct {
	Cluster string    `json:"cluster"`
	Height  uint64    `json:"height"`
	Head    string    `json:"head"` // hex block hash
	Taken   time.Time `json:"taken"`
	Size    int64     `json:"-"` // bytes of the archive (set by ReadBackup)
}

// backuper is a ledger that can copy itself consistently while in use: the
// bbolt ledger. A CometBFT node's state is backed up with its home instead.
type backuper interface {
	Backup(w io.Writer, begin func(size int64, head ledger.BlockRef) error) error
}

// Backup writes a backup archive of the running CH's data directory to w: a
// consistent snapshot taken while joins go on. It holds the key lock, so a
// rotation waits for it (and it for a rotation).
func (c *CH) Backup(ctx context.Context, w io.Writer) error {
	b, ok := c.Ledger.(backuper)
	if !ok {
		return ErrBackupUnsupported
	}
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	// Temporary copies a crash left (copyDB): one backup at a time (keyMu),
	// one CH per data directory (the ledger's lock).
	stale, _ := filepath.Glob(filepath.Join(c.dir, spoolPrefix+"*"))
	for _, f := range stale {
		os.Remove(f)
	}
	// Logged because nothing else records it: the archive is a copy of the
	// CH private key.
	cw := &counting.Writer{W: w}
	height, err := writeBackup(cw, c.dir, c.Core.Config().ID, c.Keys, b, c.Grants, c.dir)
	if err != nil {
		c.log.Warn("backup failed", "err", err, "bytes", cw.N)
		return err
	}
	c.log.Info("backup taken: the archive holds the CH private key", "height", height, "bytes", cw.N)
	return nil
}

// BackupStopped writes a backup archive of the data directory dir of a
// stopped CH to w. While a CH runs on dir it fails with ledger.ErrLocked:
// back up through the running server instead.
func BackupStopped(dir string, w io.Writer) error {
	l, err := OpenLedger(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	keys, err := keysvc.OpenExisting(dir, l.Cluster())
	if err != nil {
		return err
	}
	defer keys.Close()
	g, err := OpenGrantLog(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		g = nil
	case err != nil:
		return err
	default:
		defer g.Close()
	}
	_, err = writeBackup(w, dir, l.Cluster(), keys, l, g, "")
	return err
}

// writeBackup writes the archive and returns the height of its ledger copy;
// g is the grant log, nil when there is none. With spool set (a running CH)
// the database copies go through temporary files in that directory
// (archive.copyDB says why).
func writeBackup(w io.Writer, dir, cluster string, keys *keysvc.Service, l backuper, g *ledger.GrantLog, spool string) (uint64, error) {
	// With the rotation's key files half moved, the key files may not match
	// the ledger (the CH finishes the move at its next start): the archive
	// would not restore.
	next, err := keysvc.NextKey(dir)
	if err != nil {
		return 0, fmt.Errorf("failed to back up key: %w", err)
	}
	if next != nil {
		return 0, fmt.Errorf("refusing to back up %s: a key rotation is unfinished (%s); restart the server to finish it", dir, keysvc.NextFile)
	}
	a := &archive{tw: tar.NewWriter(w), now: time.Now().UTC(), spool: spool}
	for _, name := range keysvc.KeyFiles() {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && name != keysvc.KeyFile {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("failed to back up key: %w", err)
		}
		if err := a.add(name, int64(len(b))); err != nil {
			return 0, fmt.Errorf("failed to write backup: %w", err)
		}
		if _, err := a.tw.Write(b); err != nil {
			return 0, fmt.Errorf("failed to write backup: %w", err)
		}
	}
	if err := a.copyDB(keysvc.RekeyFile, keys.BackupRekeys, nil); err != nil {
		return 0, fmt.Errorf("failed to write backup: %w", err)
	}
	var head ledger.BlockRef
	copyLedger := func(w io.Writer, begin func(int64) error) error {
		return l.Backup(w, func(size int64, h ledger.BlockRef) error { head = h; return begin(size) })
	}
	info := func() error { // backup.json, ahead of the ledger copy it describes
		info, err := json.Marshal(BackupInfo{Cluster: cluster, Height: head.Height, Head: hex.EncodeToString(head.Hash[:]), Taken: a.now})
		if err != nil {
			return err
		}
		if err := a.add(backupInfoName, int64(len(info))); err != nil {
			return err
		}
		_, err = a.tw.Write(info)
		return err
	}
	if err := a.copyDB(LedgerFile, copyLedger, info); err != nil {
		return 0, fmt.Errorf("failed to write backup: %w", err)
	}
	if g != nil {
		if err := a.copyDB(ledger.GrantLogFile, g.Backup, nil); err != nil {
			return 0, fmt.Errorf("failed to write backup: %w", err)
		}
	}
	if err := a.tw.Close(); err != nil {
		return 0, fmt.Errorf("failed to write backup: %w", err)
	}
	return head.Height, nil
}

// spoolPrefix begins the names of copyDB's temporary files.
const spoolPrefix = ".backup-"

// archive is a backup being written.
type archive struct {
	tw    *tar.Writer
	now   time.Time
	spool string // directory of the database copies' temporary files; "" none
}

// add writes the header of an entry of size bytes.
func (a *archive) add(name string, size int64) error {
	return a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: a.now, Typeflag: tar.TypeReg})
}

// copyDB adds the entry name with what copy writes: a consistent copy of a
// bbolt file, taken in one read transaction, after a call of begin with its
// size; no entry when copy calls no begin (no file). before, if not nil,
// writes what goes ahead of the entry.
//
// IMPORTANT: with a.spool set the copy goes to a temporary file there first
// and the archive is written from it after the transaction ends. bbolt
// grows a file's memory map only once no read transaction is open, so a
// transaction that lasted as long as the archive's reader takes (a slow
// disk, a suspended 'ledger backup') would stop the running CH's commits at
// the next growth: joins waited until the backup ended, answered 5.03.
func (a *archive) copyDB(name string, copy func(w io.Writer, begin func(size int64) error) error, before func() error) error {
	entry := func(size int64) error {
		if before != nil {
			if err := before(); err != nil {
				return err
			}
		}
		return a.add(name, size)
	}
	if a.spool == "" {
		return copy(a.tw, entry)
	}
	f, err := os.CreateTemp(a.spool, spoolPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("failed to spool %s: %w", name, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size := int64(-1)
	if err := copy(f, func(n int64) error { size = n; return nil }); err != nil {
		return err
	}
	if size < 0 {
		return nil
	}
	if err := entry(size); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("failed to spool %s: %w", name, err)
	}
	_, err = io.Copy(a.tw, f)
	return err
}

// ReadBackup reads a backup archive from r to its end, checking its form
// (the entries a backup has, in its order, and the end-of-archive marker),
// and calls put, if not nil, with each file's name and content. It returns
// the archive's BackupInfo. A truncated archive is an error.
func ReadBackup(r io.Reader, put func(name string, content io.Reader) error) (BackupInfo, error) {
	cr := &counting.Reader{R: r}
	tr := tar.NewReader(cr)
	var info BackupInfo
	var seen []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, fmt.Errorf("%w: %v", ErrBadBackup, err)
		}
		allowed := append(keysvc.KeyFiles(), keysvc.RekeyFile, backupInfoName, LedgerFile, ledger.GrantLogFile)
		switch {
		case !slices.Contains(allowed, h.Name) || h.Typeflag != tar.TypeReg:
			return info, fmt.Errorf("%w: unexpected entry %q", ErrBadBackup, h.Name)
		case slices.Contains(seen, h.Name):
			return info, fmt.Errorf("%w: %q twice", ErrBadBackup, h.Name)
		case h.Name == LedgerFile && !slices.Contains(seen, backupInfoName):
			return info, fmt.Errorf("%w: %s before %s", ErrBadBackup, LedgerFile, backupInfoName)
		case h.Name == ledger.GrantLogFile && !slices.Contains(seen, LedgerFile):
			return info, fmt.Errorf("%w: %s before %s", ErrBadBackup, ledger.GrantLogFile, LedgerFile)
		case h.Name != LedgerFile && h.Name != ledger.GrantLogFile && slices.Contains(seen, LedgerFile):
			return info, fmt.Errorf("%w: %q after %s", ErrBadBackup, h.Name, LedgerFile)
		}
		seen = append(seen, h.Name)
		if h.Name == backupInfoName {
			if err := json.NewDecoder(io.LimitReader(tr, 4096)).Decode(&info); err != nil {
				return info, fmt.Errorf("%w: %s: %v", ErrBadBackup, backupInfoName, err)
			}
			continue
		}
		if put != nil {
			if err := put(h.Name, tr); err != nil {
				return info, err
			}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil { // what put left, and the size check
			return info, fmt.Errorf("%w: %s: %v", ErrBadBackup, h.Name, err)
		}
	}
	if !slices.Contains(seen, keysvc.KeyFile) || !slices.Contains(seen, LedgerFile) {
		return info, fmt.Errorf("%w: it must hold %s, %s and %s", ErrBadBackup, keysvc.KeyFile, backupInfoName, LedgerFile)
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return info, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	info.Size = cr.N
	return info, nil
}

// Restore puts the backup archive read from r into the data directory dir,
// which must not hold a key or a ledger, verifies the restored ledger under
// the restored keys (every hash, signature and event) and returns the
// backup's info. progress, if not nil, is called as the ledger is verified
// (blocks done, of total): on a large ledger that takes a while.
//
// It writes and verifies the archive's files in a staging directory inside
// dir (restoreStaging*, the same file system), and only then links them into
// dir, the ledger first and the key in force last. IMPORTANT: that order is
// what makes a kill safe: a CH refuses a ledger without its key, but on a
// key without a ledger it would start a new, empty ledger signed by the
// restored key — a second chain under the key of the first. A kill leaves
// dir as it was (with a staging directory, which the next Restore removes),
// or holding a ledger without its key, which no CH serves; never the key
// alone. On an error it removes what it wrote.
func Restore(r io.Reader, dir string, progress func(done, total uint64)) (BackupInfo, error) {
	for _, name := range slices.Backward(placeOrder) {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return BackupInfo{}, fmt.Errorf("refusing to restore into %s: it already holds %s (restore into a new directory)", dir, name)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupInfo{}, fmt.Errorf("failed to create data directory %s: %w", dir, err)
	}
	// The keys go only where a CH would use them: a directory group or
	// others may enter is refused before anything is written.
	if err := secretfile.CheckDir(dir); err != nil {
		return BackupInfo{}, fmt.Errorf("refusing to restore: %w", err)
	}
	// What a killed Restore left: copies of the keys, never used.
	stale, _ := filepath.Glob(filepath.Join(dir, restoreStaging+"*"))
	for _, s := range stale {
		if err := os.RemoveAll(s); err != nil {
			return BackupInfo{}, fmt.Errorf("failed to remove %s, left by an interrupted restore: %w", s, err)
		}
	}
	staging, err := os.MkdirTemp(dir, restoreStaging)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("failed to create staging directory in %s: %w", dir, err)
	}
	defer os.RemoveAll(staging)
	var restored []string
	info, err := ReadBackup(r, func(name string, content io.Reader) error {
		if err := atomicfile.CreateFrom(filepath.Join(staging, name), 0o600, func(w io.Writer) error {
			_, err := io.Copy(w, content)
			return err
		}); err != nil {
			return fmt.Errorf("failed to restore %s: %w", name, err)
		}
		restored = append(restored, name)
		return nil
	})
	if err == nil {
		err = verifyRestored(staging, progress)
	}
	if err != nil {
		return BackupInfo{}, err
	}
	var placed []string
	for _, name := range placeOrder {
		if !slices.Contains(restored, name) {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Link(filepath.Join(staging, name), path); err != nil { // never replaces
			for _, p := range slices.Backward(placed) { // the key first
				os.Remove(p)
			}
			return BackupInfo{}, fmt.Errorf("failed to restore %s: %w", name, err)
		}
		placed = append(placed, path)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return BackupInfo{}, fmt.Errorf("failed to restore into %s: %w", dir, err)
	}
	return info, nil
}

// restoreStaging is the name prefix of Restore's staging directory.
const restoreStaging = ".restore-"

// placeOrder is the order in which Restore puts the files into the data
// directory: the ledger first, the key in force last (Restore says why).
var placeOrder = []string{LedgerFile, ledger.GrantLogFile, keysvc.RekeyFile, keysvc.RetiredFile, keysvc.KeyFile}

func verifyRestored(dir string, progress func(done, total uint64)) error {
	l, err := OpenLedger(dir)
	if err != nil {
		return fmt.Errorf("failed to open the restored ledger: %w", err)
	}
	defer l.Close()
	if err := l.Verify(context.Background(), progress); err != nil {
		return fmt.Errorf("restored ledger does not verify: %w", err)
	}
	return nil
}
