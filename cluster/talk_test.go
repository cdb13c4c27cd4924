package cluster_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// TestTalkProofRefusals: a /session forwarding a talk proof that does not
// authenticate its initiator, now, to this responder, is refused with
// ErrBadTalkProof before anything is recorded or counted — whoever the
// proof names — and the proof is not spent by the refusal.
func TestTalkProofRefusals(t *testing.T) {
	life := protect.TalkProofLifetime
	tests := []struct {
		name   string
		proof  func(e *env, m1, m3 *dev) (peer string, p *wire.TalkProof)
		detail string
	}{
		{"stale", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			return "m1", m1.proof("m2", e.now.Add(-life-time.Second))
		}, "stale"},
		{"from the future", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			return "m1", m1.proof("m2", e.now.Add(life+time.Second))
		}, "stale"},
		{"forged tag", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			p := m1.proof("m2", e.now)
			p.Tag[3] ^= 0x10
			return "m1", p
		}, ""},
		{"unknown initiator", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			return "nobody", m1.proof("m2", e.now)
		}, ""},
		{"for another responder", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			return "m1", m1.proof("m3", e.now)
		}, ""},
		{"another member's proof in the initiator's name", func(e *env, _, m3 *dev) (string, *wire.TalkProof) {
			p, err := protect.NewTalkProof(m3.keys.Talk, clusterID, "m1", "m2", e.now)
			if err != nil {
				t.Fatal(err)
			}
			return "m1", p
		}, ""},
		{"under the initiator's request key", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			p, err := protect.NewTalkProof(m1.keys.Req, clusterID, "m1", "m2", e.now)
			if err != nil {
				t.Fatal(err)
			}
			return "m1", p
		}, ""},
		{"under the member key of the initiator's previous join", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			p := m1.proof("m2", e.now)
			if _, err := m1.leave(); err != nil {
				t.Fatal(err)
			}
			m1.mustJoin()
			return "m1", p
		}, ""},
		{"initiator of another cluster on a shared ledger", func(e *env, m1, _ *dev) (string, *wire.TalkProof) {
			e.ledger.setCluster("m1", "cluster-b")
			return "m1", m1.proof("m2", e.now)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			m1 := e.device("m1").mustJoin()
			m2 := e.device("m2").mustJoin()
			m3 := e.device("m3").mustJoin()
			peer, p := tt.proof(e, m1, m3)
			before := e.ledger.written()
			_, err := m2.forward(peer, p)
			e.wantRefusal(err, cluster.ErrBadTalkProof, tt.detail, before)
			if len(e.obs.warnings) != 0 || e.obs.sessions != 0 {
				t.Errorf("a refused proof was counted: warnings %v, sessions %d", e.obs.warnings, e.obs.sessions)
			}
		})
	}
}

// TestTalkProofGrants: a fresh proof of a current member, anywhere in the
// window, gets the session — recorded and counted as one — and is spent:
// forwarded again, even at the last second it is fresh, it is refused as a
// replay with nothing written; the initiator's next proof works.
func TestTalkProofGrants(t *testing.T) {
	life := protect.TalkProofLifetime
	for _, at := range []time.Duration{-life, 0, life} {
		t.Run(at.String(), func(t *testing.T) {
			e := newEnv(t)
			m1 := e.device("m1").mustJoin()
			m2 := e.device("m2").mustJoin()
			p := m1.proof("m2", e.now.Add(at))
			before := e.ledger.written()
			s, err := m2.forward("m1", p)
			if err != nil {
				t.Fatalf("fresh proof of a member: %v", err)
			}
			if s.Warning != nil || s.Grant == nil || s.Ticket == nil || s.Ticket.Recipient != "m1" || s.Grant.Recipient != "m2" {
				t.Fatalf("answer %+v, want a grant and m1's ticket", s)
			}
			if _, err := protect.OpenTicket(m1.keys.Ticket, clusterID, "m1", s.Ticket, e.now); err != nil {
				t.Fatalf("m1's ticket: %v", err)
			}
			if ev := e.oneRecord(before); ev.Type != ledger.EventSession || e.obs.sessions != 1 {
				t.Fatalf("session not recorded once: %+v, %d counted", ev, e.obs.sessions)
			}
			e.advance(at + life) // the proof's last fresh second
			_, err = m2.forward("m1", p)
			e.wantRefusal(err, cluster.ErrBadTalkProof, "replay", before+1)
			if _, err := m2.forward("m1", m1.proof("m2", e.now)); err != nil {
				t.Fatalf("the next proof: %v", err)
			}
		})
	}
}

// TestTalkProofWarnings: an initiator that proves its identity under the
// member key of its latest join but is no longer a current member gets a
// warning verdict instead of a session: counted, recorded as a
// verify-warning of the responder about it, once — a replay of the proof
// is refused and recorded nowhere.
func TestTalkProofWarnings(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env, m1, m2 *dev)
		want  membership.Status
	}{
		{"left", func(e *env, m1, _ *dev) {
			if _, err := m1.leave(); err != nil {
				t.Fatal(err)
			}
		}, membership.Left},
		{"revoked", func(e *env, _, _ *dev) {
			if _, err := e.core.Revoke(t.Context(), "m1", "stolen"); err != nil {
				t.Fatal(err)
			}
		}, membership.Revoked},
		{"expired", func(e *env, _, m2 *dev) {
			e.advance(cluster.DefaultMemberTTL)
			m2.mustJoin() // the responder is current again; the initiator is not
		}, membership.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			m1 := e.device("m1").mustJoin()
			m2 := e.device("m2").mustJoin()
			tt.setup(e, m1, m2)
			p := m1.proof("m2", e.now)
			before := e.ledger.written()
			s, err := m2.forward("m1", p)
			if err != nil {
				t.Fatalf("authenticated proof of a former member: %v", err)
			}
			rec, _ := e.ledger.Lookup("m1")
			if v := s.Warning; v == nil || s.Grant != nil || s.Ticket != nil || v.Peer != "m1" || v.Status.Membership() != tt.want ||
				v.Height != rec.Joined.Height || !bytes.Equal(v.BlockHash, rec.Joined.Hash[:]) || v.Expires != uint64(rec.Expires) {
				t.Fatalf("answer %+v (warning %+v), want a %v warning naming m1's join", s, s.Warning, tt.want)
			}
			if ev := e.oneRecord(before); ev.Type != ledger.EventVerifyWarning || ev.Device != "m2" || ev.Peer != "m1" ||
				ev.Reason != tt.want.String() {
				t.Fatalf("record %+v: want a verify-warning", ev)
			}
			if len(e.obs.warnings) != 1 || e.obs.warnings[0] != tt.want.String() || e.obs.sessions != 0 {
				t.Fatalf("counted warnings %v, sessions %d", e.obs.warnings, e.obs.sessions)
			}
			if want := "level=INFO msg=\"warning verdict\" asker=m2 peer=m1 reason=" + tt.want.String() + "\n"; e.log.String() != want {
				t.Errorf("log %q, want %q", e.log.String(), want)
			}
			_, err = m2.forward("m1", p)
			e.wantRefusal(err, cluster.ErrBadTalkProof, "replay", before+1)
			if len(e.obs.warnings) != 1 {
				t.Errorf("the replay was counted: %v", e.obs.warnings)
			}
		})
	}
}

// TestTalkProofOrder: the requester's own standing and the peer rule come
// before the proof, which is then not spent: the same proof works once
// they are right.
func TestTalkProofOrder(t *testing.T) {
	e := newEnv(t)
	m1 := e.device("m1").mustJoin()
	m2 := e.device("m2").mustJoin()
	own := m2.proof("m2", e.now)
	before := e.ledger.written()
	_, err := m2.forward("m2", own)
	e.wantRefusal(err, cluster.ErrPeerNotMember, "peer is the requester", before)

	p := m1.proof("m2", e.now)
	if _, err := m2.forward("m1", &wire.TalkProof{Nonce: p.Nonce, Time: p.Time, Tag: make([]byte, wire.TagSize)}); err == nil {
		t.Fatal("a forged copy of the proof was accepted")
	}
	if _, err := m2.forward("m1", p); err != nil {
		t.Fatalf("the genuine proof after a forged copy with its nonce: %v", err)
	}
}

// TestSpentProofsBounded: the CH remembers at most TalkProofs unexpired
// proofs. Past that it refuses new ones (ErrBusy) without spending them or
// writing anything, and never forgets an unexpired one; proofs that did not
// authenticate take no place; once proofs expire, their places are free.
func TestSpentProofsBounded(t *testing.T) {
	e := newEnv(t, func(c *cluster.Config) { c.TalkProofs = 2 })
	m1 := e.device("m1").mustJoin()
	m2 := e.device("m2").mustJoin()
	forged := m1.proof("m2", e.now)
	forged.Tag[0] ^= 1
	for range 5 {
		if _, err := m2.forward("m1", forged); err == nil {
			t.Fatal("forged proof accepted")
		}
	}
	first := m1.proof("m2", e.now)
	for i, p := range []*wire.TalkProof{first, m1.proof("m2", e.now.Add(time.Second))} {
		if _, err := m2.forward("m1", p); err != nil {
			t.Fatalf("proof %d of 2: %v", i, err)
		}
	}
	third := m1.proof("m2", e.now)
	e.core.Flush()
	before := e.ledger.written()
	_, err := m2.forward("m1", third)
	e.wantRefusal(err, cluster.ErrBusy, "", before)
	e.advance(protect.TalkProofLifetime) // first's last fresh second: still remembered
	_, err = m2.forward("m1", first)
	e.wantRefusal(err, cluster.ErrBadTalkProof, "replay", before)
	e.advance(time.Second) // first has expired; the second proof has not
	if _, err := m2.forward("m1", m1.proof("m2", e.now)); err != nil {
		t.Fatalf("a new proof once one place is free: %v", err)
	}
	e.core.Flush()
	before = e.ledger.written()
	_, err = m2.forward("m1", m1.proof("m2", e.now))
	e.wantRefusal(err, cluster.ErrBusy, "", before)
	e.advance(time.Second)
	if _, err := m2.forward("m1", m1.proof("m2", e.now)); err != nil {
		t.Fatalf("a new proof once the second expired: %v", err)
	}
}

// TestSpentProofsPerInitiator: one initiator's proofs take at most
// TalkProofsPerMember places, so that a member and a responder in collusion
// cannot fill the table and block every other member's talks. Past its
// quota an initiator's proof is refused (ErrBusy) without being spent, while
// another initiator's proofs, to the same responder, are still accepted.
func TestSpentProofsPerInitiator(t *testing.T) {
	e := newEnv(t, func(c *cluster.Config) { c.TalkProofs = 8; c.TalkProofsPerMember = 2 })
	m1 := e.device("m1").mustJoin()
	m2 := e.device("m2").mustJoin()
	m3 := e.device("m3").mustJoin()
	for i := range 2 {
		if _, err := m2.forward("m1", m1.proof("m2", e.now.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatalf("proof %d of m1's 2: %v", i, err)
		}
	}
	e.core.Flush()
	before := e.ledger.written()
	over := m1.proof("m2", e.now.Add(30*time.Second)) // still fresh when m1's first proof has expired
	_, err := m2.forward("m1", over)
	e.wantRefusal(err, cluster.ErrBusy, "initiator's quota", before)
	if _, err := m2.forward("m3", m3.proof("m2", e.now)); err != nil {
		t.Fatalf("another initiator's proof while m1 is at its quota: %v", err)
	}
	e.advance(protect.TalkProofLifetime + time.Second) // m1's first proof has expired
	if _, err := m2.forward("m1", over); err != nil {
		t.Fatalf("the refused proof once a place of m1's is free: %v", err)
	}
}

// TestPeerLookupFailure: when the index cannot say who the peer is, /verify
// and /session — with or without a talk proof — fail as internal errors
// (5.00 at the edge), not as a rejection or a verdict: nothing is
// recorded, counted or spent, and the same proof works once the index does.
func TestPeerLookupFailure(t *testing.T) {
	e := newEnv(t)
	m1 := e.device("m1").mustJoin()
	m2 := e.device("m2").mustJoin()
	p := m1.proof("m2", e.now)
	e.ledger.breakLookup("m1")
	before := e.ledger.written()
	for name, call := range map[string]func() error{
		"verify":                     func() error { _, err := m2.verify("m1"); return err },
		"session":                    func() error { _, err := m2.session("m1"); return err },
		"session forwarding a proof": func() error { _, err := m2.forward("m1", p); return err },
	} {
		err := call()
		var r *cluster.Refusal
		if err == nil || errors.As(err, &r) || errors.Is(err, cluster.ErrBadTalkProof) || errors.Is(err, cluster.ErrPeerNotMember) {
			t.Errorf("%s with a damaged index: %v, want an internal error", name, err)
		}
	}
	e.core.Flush()
	if e.ledger.written() != before || len(e.obs.warnings) != 0 || e.obs.sessions != 0 {
		t.Fatalf("written %d, warnings %v, sessions %d", e.ledger.written()-before, e.obs.warnings, e.obs.sessions)
	}
	e.ledger.breakLookup("")
	if _, err := m2.forward("m1", p); err != nil {
		t.Fatalf("the proof once the index works: %v", err)
	}
}
