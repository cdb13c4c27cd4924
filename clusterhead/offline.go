package clusterhead

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// OpenLedger opens the ledger in the data directory dir of a stopped cluster
// head read-only, with the CH key to check its signatures ('iotguard ledger
// verify|list', tests); see openStopped.
func OpenLedger(dir string) (*ledger.Bolt, error) { return openStopped(dir, false) }

// openStopped opens the ledger in the data directory dir of a stopped
// cluster head with its CH keys: to check its signatures, and with sign to
// sign blocks too. A key rotation a crash interrupted is first finished or
// abandoned in the key files, as the CH's start would (finishRotation).
// While the CH runs the file is locked: the error then wraps
// ledger.ErrLocked and says to stop it. A CH of a shared ledger has none
// here: its ledger is written through its running server.
func openStopped(dir string, sign bool) (*ledger.Bolt, error) {
	path := filepath.Join(dir, LedgerFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no ledger at %s (a CometBFT ledger is read and written through its running server): %w", path, err)
	}
	if err := finishRotation(dir); err != nil {
		return nil, err
	}
	keys, err := keysvc.Load(dir)
	if err != nil {
		return nil, err
	}
	opts := ledger.Options{Verifier: keys}
	if sign {
		opts.Signer = keys
	}
	l, err := ledger.Open(path, opts)
	if errors.Is(err, ledger.ErrLocked) {
		return nil, fmt.Errorf("%w: stop the server using %s first", err, dir)
	}
	return l, err
}

// OpenGrantLog opens, read-only, the grant log of the data directory dir of
// a stopped CH (os.ErrNotExist when it has none).
func OpenGrantLog(dir string) (*ledger.GrantLog, error) {
	return ledger.OpenGrantLog(filepath.Join(dir, ledger.GrantLogFile), true)
}

// Enroll records r on the ledger in the data directory dir of a stopped
// cluster head, signed with its CH key: what the control socket does for a
// running one. While the CH runs the ledger is locked (ledger.ErrLocked):
// use the control socket then.
func Enroll(ctx context.Context, dir string, r cluster.Enrollment) (ledger.BlockRef, error) {
	ev, err := cluster.EnrollEvent(r, time.Now())
	if err != nil {
		return ledger.BlockRef{}, err
	}
	return appendOffline(ctx, dir, func(string) ledger.Event { return ev })
}

// Unenroll records the removal of id's enrollment on the ledger of the
// stopped cluster head in dir.
func Unenroll(ctx context.Context, dir, id, reason string) (ledger.BlockRef, error) {
	return appendOffline(ctx, dir, func(string) ledger.Event {
		return ledger.Event{Type: ledger.EventUnenroll, Device: id, Time: time.Now().UnixMilli(), Reason: reason}
	})
}

// appendOffline appends one operator event, made for the ledger's cluster,
// to the ledger of the stopped CH in dir. The state machine judges it as it
// would on a running CH.
func appendOffline(ctx context.Context, dir string, event func(cluster string) ledger.Event) (ledger.BlockRef, error) {
	l, err := openStopped(dir, true)
	if err != nil {
		return ledger.BlockRef{}, err
	}
	ev := event(l.Cluster())
	ref, err := l.Append(ctx, ev)
	if cerr := l.Close(); err == nil && cerr != nil {
		return ledger.BlockRef{}, cerr
	}
	if err != nil {
		return ledger.BlockRef{}, fmt.Errorf("failed to record %s of %s: %w", ev.Type, ev.Device, err)
	}
	return ref, nil
}

// finishRotation finishes or abandons a key rotation that a crash
// interrupted in the data directory dir of a stopped CH, as the CH's start
// does (recoverRotation). Until then the key files do not match the ledger:
// a rotate event on it names a key that only keysvc.NextFile holds, so the
// ledger does not verify under them, a block signed with them would follow
// one signed by the next key, and a backup of them would not restore.
//
// IMPORTANT: it rewrites the key files, so only a process of dir's owner
// may: key files root wrote into the data directory of a service's user
// (systemd's DynamicUser) would stop that service's next start. Another user
// gets an error saying to start the server.
func finishRotation(dir string) error {
	next, err := keysvc.NextKey(dir)
	if err != nil || next == nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("failed to recover key rotation: %w", err)
	}
	if owner := st.Sys().(*syscall.Stat_t).Uid; owner != uint32(os.Geteuid()) {
		return fmt.Errorf("a key rotation was interrupted in %s (%s is there): start the server once to finish it, or run this command as the owner of %s (uid %d)",
			dir, keysvc.NextFile, dir, owner)
	}
	err = recoverRotation(dir)
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%w: stop the server using %s first", err, dir)
	}
	return err
}
