package clusterhead_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// joinedWith joins a fresh device id to ch under options, keeping its state.
func joinedWith(t *testing.T, ch *clusterhead.CH, id string, opts ...device.Option) (*device.Device, *device.State) {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, ch, st)
	d, err := device.Dial(ch.Addr(), st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return d, st
}

// TestRotateKey rotates the key of a serving CH and checks: the ledger
// records it and the new key serves; a device pinned to the old key accepts
// the new one through the signed rotation, one pinned to another key does
// not; members of the old key keep working, new ones join under the new key,
// and the two get sessions with each other; a member re-keys without a
// ledger join, after which its old member key is refused; after a restart
// old and new members still verify and get sessions; 'ledger verify' follows
// the chain of keys.
func TestRotateKey(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	ctx := chtest.Ctx(t)
	old := ch.Keys.Thumbprint()
	a, stA := joinedWith(t, ch, "sensor-a", device.WithPin(old[:]))
	_, stKeep := joinedWith(t, ch, "sensor-keep")

	before := chtest.Height(t, ch)
	r, err := ch.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nu := ch.Keys.Thumbprint()
	if nu == old || r.Height != before+1 {
		t.Fatalf("rotation %+v: key %x → %x, height %d → %d", r, old, nu, before, r.Height)
	}

	// GET /cluster: the new key and the rotation; accepted from the old pin.
	info, pub, err := a.ClusterInfo(ctx)
	if err != nil {
		t.Fatalf("device pinned to the old key: %v", err)
	}
	if wire.Thumbprint(pub) != nu || len(info.Rotations) != 1 {
		t.Fatalf("/cluster serves key %x with %d rotations", wire.Thumbprint(pub), len(info.Rotations))
	}
	stranger, err := device.NewState("stranger")
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{7}, 32)
	sd, err := device.Dial(ch.Addr(), stranger, device.WithPin(other))
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	if _, _, err := sd.ClusterInfo(ctx); !errors.Is(err, device.ErrUntrustedCH) {
		t.Fatalf("device pinned to an unrelated key: %v, want ErrUntrustedCH", err)
	}

	// Old and new members side by side.
	b, stB := joinedWith(t, ch, "sensor-b", device.WithPin(nu[:]))
	if _, err := a.Verify(ctx, "sensor-b"); err != nil {
		t.Fatalf("member of the old key verifies a new one: %v", err)
	}
	if _, _, err := b.Session(ctx, "sensor-a"); err != nil {
		t.Fatalf("session between a new and an old member: %v", err)
	}
	if _, _, err := a.Session(ctx, "sensor-b"); err != nil {
		t.Fatalf("session between an old and a new member: %v", err)
	}

	// sensor-a re-keys; its old member key is then refused.
	stale := *stA
	m := *stA.Membership
	stale.Membership = &m
	if changed, err := a.Rekey(ctx); err != nil || !changed {
		t.Fatalf("rekey: %v %v", changed, err)
	}
	if changed, err := a.Rekey(ctx); err != nil || changed {
		t.Fatalf("second rekey: %v %v, want nothing to do", changed, err)
	}
	if _, err := a.Verify(ctx, "sensor-b"); err != nil {
		t.Fatalf("verify after rekey: %v", err)
	}
	stale.Seq = stA.Seq + 100 // fresh sequence numbers: refused for the key, not as a replay
	sdOld := chtest.Dial(t, ch, &stale)
	var ce *device.CodeError
	if _, err := sdOld.Verify(ctx, "sensor-b"); !errors.As(err, &ce) || ce.Diagnostic != "unauthorized" {
		t.Fatalf("old member key after rekey: %v, want 4.01 unauthorized", err)
	}

	// A rotation while another runs (a backup holds the key lock) is refused.
	pr, pw := io.Pipe()
	backup := make(chan error, 1)
	go func() { backup <- ch.Backup(ctx, pw); pw.Close() }()
	if _, err := pr.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.RotateKey(ctx); !errors.Is(err, keysvc.ErrRotating) {
		t.Fatalf("rotation during a backup: %v, want ErrRotating", err)
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		t.Fatal(err)
	}
	if err := <-backup; err != nil {
		t.Fatal(err)
	}

	// Restart: the new key stays in force, every member keeps its key.
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch2 := chtest.Start(t, dir)
	if ch2.Keys.Thumbprint() != nu {
		t.Fatalf("after restart the key is %x, want %x", ch2.Keys.Thumbprint(), nu)
	}
	for _, st := range []*device.State{stA, stKeep, stB} { // re-keyed, old key, new key
		d := chtest.Dial(t, ch2, st)
		if _, err := d.Verify(ctx, "sensor-b"); err != nil {
			t.Fatalf("%s after restart: %v", st.ID, err)
		}
	}
	if _, _, err := chtest.Dial(t, ch2, stB).Session(ctx, "sensor-keep"); err != nil {
		t.Fatalf("session between a new and an old member after restart: %v", err)
	}
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := clusterhead.OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Verify(context.Background(), nil); err != nil {
		t.Fatalf("ledger verify after rotation: %v", err)
	}
}

// rotatedAndRekeyed joins sensor-a and sensor-b to ch, rotates its key and
// re-keys sensor-a. It returns sensor-a's device, both states, and a copy of
// sensor-a's state from before the re-key (its old member key).
func rotatedAndRekeyed(t *testing.T, ch *clusterhead.CH) (a *device.Device, stA, stB, stale *device.State) {
	t.Helper()
	a, stA = joinedWith(t, ch, "sensor-a")
	_, stB = joinedWith(t, ch, "sensor-b")
	if _, err := ch.RotateKey(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	old := *stA
	m := *stA.Membership
	old.Membership = &m
	if changed, err := a.Rekey(chtest.Ctx(t)); err != nil || !changed {
		t.Fatalf("rekey: %v %v", changed, err)
	}
	return a, stA, stB, &old
}

// TestRekeyedMemberTalksAfterRestart: a member that re-keyed and has sent
// no protected request since the CH restarted talks to a peer at once: the
// CH checks its talk proof under its new member key and seals its ticket
// under it. Its old member key's hello is then refused (4.01, nothing
// recorded). Regression: the CH checked the proof only under the old member
// key until the member's first protected request ("bad talk proof").
func TestRekeyedMemberTalksAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	ctx := chtest.Ctx(t)
	_, stA, stB, stale := rotatedAndRekeyed(t, ch)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch2 := chtest.Start(t, dir)

	got := make(chan string, 1)
	l, err := chtest.Dial(t, ch2, stB).Listen("127.0.0.1:0", func(from string, msg []byte) []byte {
		got <- from + ":" + string(msg)
		return []byte("ok")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	talk, err := chtest.Dial(t, ch2, stA).Talk(ctx, l.Addr().String(), "sensor-b")
	if err != nil {
		t.Fatalf("re-keyed member talks after a restart: %v", err)
	}
	defer talk.Close()
	if reply, err := talk.Send(ctx, []byte("hi")); err != nil || string(reply) != "ok" || <-got != "sensor-a:hi" {
		t.Fatalf("re-keyed member sends: %q, %v", reply, err)
	}

	before := chtest.Snap(t, ch2)
	stale.Seq = stA.Seq + 100
	_, err = chtest.Dial(t, ch2, stale).Talk(ctx, l.Addr().String(), "sensor-b")
	var ce *device.CodeError
	if !errors.Is(err, device.ErrTalkProofRefused) || !errors.As(err, &ce) || ce.Diagnostic != "bad talk proof" {
		t.Fatalf("hello under the old member key after the re-key: %v, want 4.01 bad talk proof", err)
	}
	chtest.Unchanged(t, ch2, before)
}

// TestRekeyRecordedAcrossRestart: once a member's request opened under its
// new member key, the CH records the re-key. After a restart, and in a CH
// restored from a backup taken after it, the old member key is still
// refused (4.01, nothing changed) and the member's coaps PSK is the new
// key's. A member that did not re-key keeps its join's PSK. Regression:
// both fell back to the old member key after a restart.
func TestRekeyRecordedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	withCoaps := func(c *clusterhead.Config) {
		c.DTLSListen = "127.0.0.1:0"
		c.DTLS.HandshakeTimeout = 3 * time.Second
	}
	ch := chtest.Start(t, dir, withCoaps)
	ctx := chtest.Ctx(t)
	a, stA, stB, stale := rotatedAndRekeyed(t, ch)
	record := filepath.Join(dir, keysvc.RekeyFile)
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s before the member spoke under its new key: %v, want none", keysvc.RekeyFile, err)
	}
	// A re-key that cannot be recorded is not answered: 5.00, nothing changed.
	if err := os.Mkdir(record, 0o700); err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, ch)
	var ce *device.CodeError
	if _, err := a.Verify(ctx, "sensor-b"); !errors.As(err, &ce) || ce.Code != codes.InternalServerError {
		t.Fatalf("verify when the re-key cannot be recorded: %v, want 5.00", err)
	}
	chtest.Unchanged(t, ch, before)
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, "sensor-b"); err != nil {
		t.Fatalf("verify after rekey: %v", err)
	}
	var archive bytes.Buffer
	if err := ch.Backup(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := clusterhead.Restore(&archive, restored, nil); err != nil {
		t.Fatal(err)
	}

	stale.Seq = stA.Seq + 100 // fresh sequence numbers: refused for the key, not as a replay
	for _, d := range []string{dir, restored} {
		ch := chtest.Start(t, d, withCoaps)
		ctx := chtest.Ctx(t)
		before := chtest.Snap(t, ch)
		if _, err := chtest.Dial(t, ch, stale).Verify(ctx, "sensor-b"); !errors.As(err, &ce) || ce.Diagnostic != "unauthorized" {
			t.Fatalf("%s: old member key after a restart: %v, want 4.01 unauthorized", d, err)
		}
		chtest.Unchanged(t, ch, before)
		for _, st := range []*device.State{stA, stB} { // re-keyed; its join's key
			id, psk, err := st.PSK()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := chtest.DialDTLS(t, ch.DTLSAddr(), id, psk, piondtls.TLS_PSK_WITH_AES_128_CCM_8); err != nil {
				t.Fatalf("%s: coaps handshake of %s after a restart: %v", d, id, err)
			}
		}
		if id, psk, err := stale.PSK(); err != nil {
			t.Fatal(err)
		} else if d == dir { // a refused handshake costs chtest.HandshakeBound: once is enough
			if _, err := chtest.DialDTLS(t, ch.DTLSAddr(), id, psk, piondtls.TLS_PSK_WITH_AES_128_CCM_8); err == nil {
				t.Fatal("coaps handshake with the old member key's PSK succeeded after a restart")
			}
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLedgerVerifyNeedsTheKeyChain checks that Verify follows the chain of
// keys: without the retired key the genesis block does not verify.
func TestLedgerVerifyNeedsTheKeyChain(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	chtest.Joined(t, ch, "sensor-a")
	if _, err := ch.RotateKey(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	chtest.Joined(t, ch, "sensor-b")
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, keysvc.RetiredFile)); err != nil {
		t.Fatal(err)
	}
	l, err := clusterhead.OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var bad *ledger.BadBlockError
	if err := l.Verify(context.Background(), nil); !errors.As(err, &bad) || bad.Height != 0 {
		t.Fatalf("verify without the retired key: %v, want block 0 bad", err)
	}
}

// TestInterruptedRotationAbandoned: a rotation prepared but never recorded
// (the CH died before its block) is abandoned at the next start: the old
// key stays in force and the next key's file goes.
func TestInterruptedRotationAbandoned(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	chtest.Joined(t, ch, "sensor-a")
	old := ch.Keys.Thumbprint()
	if _, _, err := ch.Keys.PrepareRotation(dir, ch.Core.Config().Now()); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch2 := chtest.Start(t, dir)
	if ch2.Keys.Thumbprint() != old {
		t.Fatal("an unrecorded rotation changed the key")
	}
	if _, err := os.Stat(filepath.Join(dir, keysvc.NextFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("next key file after start: %v", err)
	}
}

// wrapped is a ledger other than the bbolt one, as a CometBFT CH has.
type wrapped struct{ ledger.Ledger }

// TestRotateAndBackupNeedTheBoltLedger: a CH on another ledger (CometBFT,
// whose genesis fixes the CH key) refuses rotate-key and online backup with
// errors that say why.
func TestRotateAndBackupNeedTheBoltLedger(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir, func(c *clusterhead.Config) {
		c.Ledger = func(keys *keysvc.Service, _ func(uint64, int)) (ledger.Ledger, error) {
			l, err := ledger.Open(filepath.Join(dir, clusterhead.LedgerFile), ledger.Options{Cluster: chtest.Cluster, Signer: keys, Verifier: keys})
			return wrapped{l}, err
		}
	})
	old := ch.Keys.Thumbprint()
	if _, err := ch.RotateKey(chtest.Ctx(t)); !errors.Is(err, clusterhead.ErrRotationUnsupported) {
		t.Fatalf("rotate-key on another ledger: %v", err)
	}
	if ch.Keys.Thumbprint() != old {
		t.Fatal("a refused rotation changed the key")
	}
	if _, err := os.Stat(filepath.Join(dir, keysvc.NextFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused rotation left %s: %v", keysvc.NextFile, err)
	}
	if err := ch.Backup(chtest.Ctx(t), io.Discard); !errors.Is(err, clusterhead.ErrBackupUnsupported) {
		t.Fatalf("backup on another ledger: %v", err)
	}
}
