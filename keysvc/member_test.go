package keysvc_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// countECDH makes s count its ECDH operations (member-key derivations).
func countECDH(s *keysvc.Service) *atomic.Int64 {
	var n atomic.Int64
	s.SetTimer(func(op string, _ time.Duration) {
		if op == "ecdh" {
			n.Add(1)
		}
	})
	return &n
}

// rotateAt puts a new CH key in force from ledger height h, as the ledger
// and clusterhead do.
func rotateAt(t *testing.T, s *keysvc.Service, dir string, h uint64) {
	t.Helper()
	_, next, err := s.PrepareRotation(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	s.Rotated(next)
	if err := s.FinishRotation(dir, h); err != nil {
		t.Fatal(err)
	}
}

// sealRequest returns member id's protected request at path under k, with
// its tag broken if forged.
func sealRequest(t testing.TB, k *protect.MemberKeys, id string, seq uint64, forged bool) *protect.Request {
	t.Helper()
	b, err := protect.SealRequest(k, cluster, id, seq, protect.PathVerify, []byte("req"))
	if err != nil {
		t.Fatal(err)
	}
	if forged {
		b[len(b)-1] ^= 1 // the last byte of the tag
	}
	req, err := protect.ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestForgedRequestsAfterRotation: after a rotation a member of the old key
// is tried under its old K_m and then the K_m of the key in force (§6.2).
// Forged requests naming it cost one ECDH in all (the new K_m, derived
// once), not two each, and its old keys stay cached: its next honest
// request costs none. Regression: each forged request evicted the other
// key's entry, so it cost two ECDH, and so did the member's next request.
func TestForgedRequestsAfterRotation(t *testing.T) {
	dir := t.TempDir()
	s, err := keysvc.Open(dir, cluster)
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, "sensor-01", 0x40)
	oldK := d.keys(t, s)
	seq := uint64(0)
	open := func(k *protect.MemberKeys, forged bool) error {
		seq++
		_, err := s.OpenRequest(d.member, sealRequest(t, k, d.member.ID, seq, forged), protect.PathVerify)
		return err
	}
	if err := open(&oldK, false); err != nil {
		t.Fatal(err)
	}
	rotateAt(t, s, dir, 10)
	ecdh := countECDH(s)
	for i := range 100 {
		if err := open(&oldK, true); !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("forged request %d: %v, want ErrDecrypt", i, err)
		}
	}
	if n := ecdh.Load(); n != 1 {
		t.Fatalf("100 forged requests cost %d ECDH, want 1 (the new K_m, once)", n)
	}
	if err := open(&oldK, false); err != nil {
		t.Fatalf("honest request under the old K_m after the forged ones: %v", err)
	}
	if n := ecdh.Load(); n != 1 {
		t.Fatalf("the honest request after the forged ones cost %d ECDH, want 0 (its keys stay cached)", n-1)
	}

	// The member re-keys: its new K_m opens, with the keys the forged
	// requests derived; then its old K_m is refused, without any ECDH.
	newK := d.keys(t, s)
	if err := open(&newK, false); err != nil {
		t.Fatalf("request under the new K_m: %v", err)
	}
	if err := open(&oldK, false); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("old K_m after the re-key: %v, want ErrDecrypt", err)
	}
	if err := open(&newK, true); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("forged request under the new K_m: %v, want ErrDecrypt", err)
	}
	if n := ecdh.Load(); n != 1 {
		t.Fatalf("re-key and refusals cost %d more ECDH, want 0", n-1)
	}
}

// TestForgedRequestsCannotEvictMembersInUse: forged requests naming more
// known members than the member-key cache holds each cost an ECDH, but
// evict no keys of a member in use (one whose request opened): its next
// request costs none. Forgeries repeated for one member cost one ECDH in
// all, and a member whose first honest request opens with keys a forgery
// derived keeps them as a member in use. Regression: every derivation
// entered the one LRU, so a flood naming known kids evicted every member.
func TestForgedRequestsCannotEvictMembersInUse(t *testing.T) {
	const cacheSize = 64
	s := newService(t)
	s.SetCacheSizes(cacheSize, cacheSize/4)
	inUse, other := newDevice(t, "sensor-01", 0x50), newDevice(t, "sensor-02", 0x60)
	inUseK, otherK := inUse.keys(t, s), other.keys(t, s)
	if _, err := s.OpenRequest(inUse.member, sealRequest(t, &inUseK, inUse.member.ID, 1, false), protect.PathVerify); err != nil {
		t.Fatal(err)
	}
	ecdh := countECDH(s)

	// Forgeries naming one member: its keys are derived once.
	for seq := range uint64(50) {
		if _, err := s.OpenRequest(other.member, sealRequest(t, &otherK, other.member.ID, seq, true), protect.PathVerify); !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("forged request %d: %v, want ErrDecrypt", seq, err)
		}
	}
	if n := ecdh.Load(); n != 1 {
		t.Fatalf("50 forged requests naming one member cost %d ECDH, want 1", n)
	}
	// Its honest request opens under those keys, which it then keeps.
	if _, err := s.OpenRequest(other.member, sealRequest(t, &otherK, other.member.ID, 100, false), protect.PathVerify); err != nil {
		t.Fatal(err)
	}

	// A flood naming more members than both caches hold.
	const flood = 2 * cacheSize
	ecdh.Store(0)
	for i := range flood {
		m := other.member
		m.ID = fmt.Sprintf("flood-%05d", i)
		if _, err := s.OpenRequest(m, sealRequest(t, &otherK, m.ID, 1, true), protect.PathVerify); !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("forged request naming %s: %v, want ErrDecrypt", m.ID, err)
		}
	}
	if n := ecdh.Load(); n != flood {
		t.Fatalf("%d forged requests naming distinct members cost %d ECDH, want one each", flood, n)
	}
	ecdh.Store(0)
	for i, d := range []device{inUse, other} {
		k := []*protect.MemberKeys{&inUseK, &otherK}[i]
		if _, err := s.OpenRequest(d.member, sealRequest(t, k, d.member.ID, 200, false), protect.PathVerify); err != nil {
			t.Fatalf("%s after the flood: %v", d.member.ID, err)
		}
	}
	if n := ecdh.Load(); n != 0 {
		t.Fatalf("members in use cost %d ECDH after the flood, want 0 (their keys stay cached)", n)
	}
}

// TestFailedDerivationsBounded: a derivation for a message that fails to
// authenticate spends a place of the budget (FailedDerivationRate); with
// none left, a message naming a member whose keys are in no cache is
// refused before any ECDH, and a member whose keys are cached is served as
// ever. A derivation whose message authenticates gives its place back.
func TestFailedDerivationsBounded(t *testing.T) {
	s := newService(t)
	s.SetFailedDerivations(1e-6, 3) // three places, none back while the test runs
	active, idle := newDevice(t, "sensor-01", 0x50), newDevice(t, "sensor-02", 0x60)
	activeK, idleK := active.keys(t, s), idle.keys(t, s)
	open := func(m keysvc.Member, k *protect.MemberKeys, seq uint64, forged bool) error {
		_, err := s.OpenRequest(m, sealRequest(t, k, m.ID, seq, forged), protect.PathVerify)
		return err
	}
	if err := open(active.member, &activeK, 1, false); err != nil { // derived, authenticated: its place back
		t.Fatal(err)
	}
	ecdh := countECDH(s)
	forge := func(i int) error {
		m := idle.member
		m.ID = fmt.Sprintf("flood-%d", i)
		return open(m, &idleK, 1, true)
	}
	for i := range 3 {
		if err := forge(i); !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("forged request %d: %v, want ErrDecrypt (a place of the three)", i, err)
		}
	}
	if err := forge(3); !errors.Is(err, keysvc.ErrDerivationsBusy) {
		t.Fatalf("forged request beyond the budget: %v, want ErrDerivationsBusy", err)
	}
	if err := open(idle.member, &idleK, 1, false); !errors.Is(err, keysvc.ErrDerivationsBusy) {
		t.Fatalf("an idle member's request while the budget is spent: %v, want ErrDerivationsBusy", err)
	}
	if err := open(active.member, &activeK, 2, false); err != nil {
		t.Fatalf("a member whose keys are cached, while the budget is spent: %v", err)
	}
	if n := ecdh.Load(); n != 3 {
		t.Fatalf("%d ECDH, want 3: one per place", n)
	}
}

// TestPSKDerivationsBounded: a coaps PSK whose keys are in no cache takes a
// place of the budget of failed derivations whatever the handshake's end
// (it is known only later); with none left it is refused before any ECDH,
// and a PSK already derived is served.
func TestPSKDerivationsBounded(t *testing.T) {
	s := newService(t)
	s.SetFailedDerivations(1e-6, 1)
	a, b := newDevice(t, "sensor-01", 0x50), newDevice(t, "sensor-02", 0x60)
	ecdh := countECDH(s)
	if _, err := s.PSK(a.member); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PSK(b.member); !errors.Is(err, keysvc.ErrDerivationsBusy) {
		t.Fatalf("a second member's PSK with no place left: %v, want ErrDerivationsBusy", err)
	}
	if _, err := s.PSK(a.member); err != nil {
		t.Fatalf("the first member's PSK again (cached): %v", err)
	}
	if n := ecdh.Load(); n != 1 {
		t.Fatalf("%d ECDH, want 1", n)
	}
}

// TestRekeyedTalkProofAndTicket: a member that re-keyed after a rotation
// (§6.2) and has sent no protected request since the CH started: its talk
// proof under the new K_m verifies, its ticket is then sealed under the new
// K_m, and its old K_m's proofs are refused. A forged proof does not move a
// member to the new key. Regression: the proof was "bad talk proof" and
// the ticket did not open until the member's first protected request.
func TestRekeyedTalkProofAndTicket(t *testing.T) {
	dir := t.TempDir()
	s, err := keysvc.Open(dir, cluster)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := newDevice(t, "sensor-01", 0x70), newDevice(t, "sensor-02", 0x80)
	oldK1, k2 := m1.keys(t, s), m2.keys(t, s)
	rotateAt(t, s, dir, 10)
	newK1 := m1.keys(t, s)                     // m1 re-keys; m2 does not
	s, err = keysvc.OpenExisting(dir, cluster) // a CH restart: it has seen nothing of m1
	if err != nil {
		t.Fatal(err)
	}
	proof := func(k *protect.MemberKeys, at time.Time) *wire.TalkProof {
		p, err := protect.NewTalkProof(k.Talk, cluster, m1.member.ID, m2.member.ID, at)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ticketKey := func() *protect.MemberKeys {
		sess, err := s.IssueSession(m1.member, m2.member, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protect.OpenTicket(k2.Ticket, cluster, m2.member.ID, &sess.Grant, now); err != nil {
			t.Fatalf("m2 opens its grant: %v", err)
		}
		for _, k := range []*protect.MemberKeys{&oldK1, &newK1} {
			if _, err := protect.OpenTicket(k.Ticket, cluster, m1.member.ID, &sess.Ticket, now); err == nil {
				return k
			}
		}
		t.Fatal("m1's ticket opens under neither of its keys")
		return nil
	}

	forged := proof(&newK1, now)
	forged.Tag[0] ^= 1
	if err := s.VerifyTalkProof(m1.member, m2.member.ID, forged, now); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("forged proof: %v, want ErrDecrypt", err)
	}
	if err := s.VerifyTalkProof(m1.member, m2.member.ID, proof(&newK1, now.Add(-2*time.Minute)), now); !errors.Is(err, protect.ErrStale) {
		t.Fatalf("stale proof: %v, want ErrStale", err)
	}
	if ticketKey() != &oldK1 {
		t.Fatal("after refused proofs m1's ticket is sealed under its new K_m; want its join's")
	}
	if err := s.VerifyTalkProof(m1.member, m2.member.ID, proof(&newK1, now), now); err != nil {
		t.Fatalf("re-keyed member's proof under its new K_m: %v", err)
	}
	if ticketKey() != &newK1 {
		t.Fatal("after its proof under the new K_m, m1's ticket is sealed under its old one")
	}
	if err := s.VerifyTalkProof(m1.member, m2.member.ID, proof(&oldK1, now), now); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("proof under the old K_m after the re-key: %v, want ErrDecrypt", err)
	}
}
