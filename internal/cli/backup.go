package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/internal/bench"
)

const backupUsage = `Usage: iotguard ledger backup --data DIR --out FILE
       iotguard ledger restore --in FILE --data NEWDIR

backup writes a backup of data directory DIR to FILE (mode 0600; never
replaces an existing file): a tar archive of, in this order, the CH key
(ch-key.pem; after rotations also the retired keys, ch-keys-retired.pem,
and the record of members that re-keyed, rekeys.db), backup.json
(cluster, height, head hash, time), a consistent copy of the
ledger (ledger.db) and of the audit records of session grants (grants.db,
when DIR has one). While a server runs on DIR the copy is taken through its
control socket without stopping it: joins go on, and the backup holds every
block committed before it began. On a stopped directory it reads the files
directly. IMPORTANT: the backup holds the CH private key; keep it as safe as
the key itself.

restore puts a backup into NEWDIR, which must hold no key and no ledger (and,
if it exists, be mode 0700, as a server requires): it writes the files into a staging directory in NEWDIR, verifies the whole
restored ledger there under the restored key, then moves the ledger and the
audit records into NEWDIR first and the key last (a restore killed midway
never leaves the key without its ledger: run it again), and prints its
height. Start the server on NEWDIR after it.

Examples:
  iotguard ledger backup --data /var/lib/iotguard --out /backup/iotguard-$(date +%F).tar
  iotguard ledger restore --in /backup/iotguard-2026-01-01.tar --data /var/lib/iotguard-restored

Flags:
`

func ledgerBackup(args []string) error {
	fs := flag.NewFlagSet("ledger backup", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head (running or stopped)")
	out := fs.String("out", "", "backup `file` to create (must not exist)")
	if err := Parse(fs, backupUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "data", "out"); err != nil {
		return err
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("refusing to overwrite %s: choose a new file name (backups are never replaced)", *out)
	}
	start := time.Now()
	var info clusterhead.BackupInfo
	mode := "online, through the running server"
	// read checks the archive while it is written: a truncated stream (the
	// server failed midway) fails here and leaves no file behind.
	read := func(r io.Reader) error {
		return atomicfile.CreateFrom(*out, 0o600, func(w io.Writer) error {
			var err error
			info, err = clusterhead.ReadBackup(io.TeeReader(r, w), nil)
			return err
		})
	}
	// ^C or SIGTERM ends the copy through read's error, so that CreateFrom
	// removes its temporary file: killed by the signal instead, the process
	// would leave a copy of the CH private key beside FILE.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	err := admin.Backup(ctx, *dir, read)
	if errors.Is(err, admin.ErrNotRunning) {
		mode = "offline, server stopped"
		pr, pw := io.Pipe()
		defer context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })()
		werr := make(chan error, 1)
		go func() {
			err := clusterhead.BackupStopped(*dir, pw)
			pw.CloseWithError(err)
			werr <- err
		}()
		err = read(pr)
		pr.Close() // a reader that failed first stops the writer (io.ErrClosedPipe)
		if e := <-werr; e != nil && !errors.Is(e, io.ErrClosedPipe) {
			err = e // the cause, rather than the archive it cut short
		}
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("backup of %s: %w; %s not written", *dir, context.Cause(ctx), *out)
	}
	if err != nil {
		return fmt.Errorf("backup of %s: %w", *dir, err)
	}
	fmt.Printf("backed up %s to %s (%s): cluster %s, height %d, head %s, %d bytes in %s\n",
		*dir, *out, mode, info.Cluster, info.Height, info.Head[:16], info.Size, time.Since(start).Round(time.Millisecond))
	return nil
}

func ledgerRestore(args []string) error {
	fs := flag.NewFlagSet("ledger restore", flag.ContinueOnError)
	in := fs.String("in", "", "backup `file` written by 'ledger backup'")
	dir := fs.String("data", "", "new data `directory` (must hold no key and no ledger)")
	if err := Parse(fs, backupUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "in", "data"); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	progress := bench.TerminalProgress(os.Stderr) // quiet in pipes
	info, err := clusterhead.Restore(f, *dir, bench.Steps(progress, "verifying restored blocks"))
	progress.Finish()
	if err != nil {
		return fmt.Errorf("restore of %s: %w", *in, err)
	}
	fmt.Printf("restored %s into %s: cluster %s, height %d, head %s; ledger verified\n", *in, *dir, info.Cluster, info.Height, info.Head[:16])
	return nil
}
