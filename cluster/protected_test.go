package cluster_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// TestVerifyVerdicts: /verify answers member only for a current member, and
// every other verdict is a warning that is counted and recorded.
func TestVerifyVerdicts(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env, peer *dev)
		want  membership.Status
	}{
		{"member", func(e *env, p *dev) { p.mustJoin() }, membership.Member},
		{"unknown", func(*env, *dev) {}, membership.Unknown},
		{"left", func(e *env, p *dev) {
			p.mustJoin()
			if _, err := p.leave(); err != nil {
				t.Fatal(err)
			}
		}, membership.Left},
		{"revoked", func(e *env, p *dev) {
			p.mustJoin()
			if _, err := e.core.Revoke(t.Context(), p.st.ID, "lost"); err != nil {
				t.Fatal(err)
			}
		}, membership.Revoked},
		{"expired", func(e *env, p *dev) {
			p.mustJoin()
			e.advance(30 * time.Minute) // the asker rejoins at the new time; the peer does not
		}, membership.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *cluster.Config) { c.MemberTTL = 20 * time.Minute })
			peer := e.device("peer")
			tt.setup(e, peer)
			asker := e.device("asker").mustJoin()
			before := e.ledger.written()
			v, err := asker.verify("peer")
			if err != nil {
				t.Fatal(err)
			}
			if v.Status.Membership() != tt.want || v.Peer != "peer" {
				t.Fatalf("verdict %+v, want %v", v, tt.want)
			}
			e.core.Flush()
			if tt.want == membership.Member {
				rec, _ := e.ledger.Lookup("peer")
				if v.Height != rec.Joined.Height || !bytes.Equal(v.BlockHash, rec.Joined.Hash[:]) || v.Expires != uint64(rec.Expires) {
					t.Errorf("verdict %+v does not name the peer's join %+v", v, rec.Joined)
				}
				if e.ledger.written() != before || len(e.obs.warnings) != 0 || e.log.Len() != 0 {
					t.Errorf("a member verdict was recorded, counted or logged as a warning")
				}
				return
			}
			if len(e.obs.warnings) != 1 || e.obs.warnings[0] != tt.want.String() {
				t.Errorf("warnings counted %v, want [%v]", e.obs.warnings, tt.want)
			}
			if want := "level=INFO msg=\"warning verdict\" asker=asker peer=peer reason=" + tt.want.String() + "\n"; e.log.String() != want {
				t.Errorf("log %q, want %q", e.log.String(), want)
			}
			ev := e.oneRecord(before)
			if ev.Type != ledger.EventVerifyWarning || ev.Device != "asker" || ev.Peer != "peer" || ev.Reason != tt.want.String() {
				t.Errorf("warning record %+v", ev)
			}
		})
	}
}

// TestProtectedRejections: what a protected request is refused for, before
// and after it is authenticated, with nothing written.
func TestProtectedRejections(t *testing.T) {
	tests := []struct {
		name   string
		send   func(e *env, m *dev) error
		want   error
		detail string
	}{
		{"not a COSE_Encrypt0", func(e *env, m *dev) error {
			_, err := e.core.Verify(t.Context(), []byte("garbage"), addr)
			return err
		}, cluster.ErrMalformed, "protected request"},
		{"unknown kid", func(e *env, m *dev) error {
			stranger := e.device("stranger")
			stranger.keys = m.keys
			body := stranger.seal(protect.PathVerify, &wire.VerifyRequest{Peer: "x"}).Body
			_, err := e.core.Verify(t.Context(), body, addr)
			return err
		}, cluster.ErrUnauthorized, ""},
		{"wrong keys", func(e *env, m *dev) error {
			var km [32]byte
			keys := protect.DeriveMemberKeys(km)
			m.keys = &keys
			_, err := m.verify("x")
			return err
		}, cluster.ErrUnauthorized, ""},
		{"sealed for another resource", func(e *env, m *dev) error {
			body := m.seal(protect.PathLeave, &wire.VerifyRequest{Peer: "x"}).Body
			_, err := e.core.Verify(t.Context(), body, addr)
			return err
		}, cluster.ErrUnauthorized, ""},
		{"replayed", func(e *env, m *dev) error {
			body := m.seal(protect.PathVerify, &wire.VerifyRequest{Peer: "m"}).Body
			if _, err := e.core.Verify(t.Context(), body, addr); err != nil {
				t.Fatal(err)
			}
			_, err := e.core.Verify(t.Context(), body, addr)
			return err
		}, cluster.ErrReplay, ""},
		{"too old for the window", func(e *env, m *dev) error {
			old := m.seal(protect.PathVerify, &wire.VerifyRequest{Peer: "m"}).Body
			m.st.Seq += 100
			if _, err := m.verify("m"); err != nil {
				t.Fatal(err)
			}
			_, err := e.core.Verify(t.Context(), old, addr)
			return err
		}, cluster.ErrReplay, ""},
		{"verify request malformed", func(e *env, m *dev) error {
			return m.call(e.core.Verify, protect.PathVerify, map[int]int{7: 7}, &wire.VerifyResponse{})
		}, cluster.ErrMalformed, "verify request"},
		{"session request malformed", func(e *env, m *dev) error {
			return m.call(e.core.Session, protect.PathSession, map[int]int{7: 7}, &wire.SessionResponse{})
		}, cluster.ErrMalformed, "session request"},
		{"leave request malformed", func(e *env, m *dev) error {
			return m.call(e.core.Leave, protect.PathLeave, map[int]int{7: 7}, &wire.LeaveResponse{})
		}, cluster.ErrMalformed, "leave request"},
		{"requester left", func(e *env, m *dev) error {
			if _, err := m.leave(); err != nil {
				t.Fatal(err)
			}
			_, err := m.verify("m")
			return err
		}, cluster.ErrNotMember, "left"},
		{"requester revoked", func(e *env, m *dev) error {
			if _, err := e.core.Revoke(t.Context(), "m", "stolen"); err != nil {
				t.Fatal(err)
			}
			_, err := m.session("x")
			return err
		}, cluster.ErrNotMember, "revoked"},
		{"requester expired", func(e *env, m *dev) error {
			e.advance(cluster.DefaultMemberTTL)
			_, err := m.leave()
			return err
		}, cluster.ErrNotMember, "expired"},
		{"requester of another cluster", func(e *env, m *dev) error {
			e.ledger.setCluster("m", "cluster-b") // a shared ledger: m's latest join was there
			_, err := m.session("m")
			return err
		}, cluster.ErrNotMember, "member of cluster cluster-b"},
		{"non-member with wrong keys", func(e *env, m *dev) error {
			e.advance(cluster.DefaultMemberTTL)
			var km [32]byte
			keys := protect.DeriveMemberKeys(km)
			m.keys = &keys
			_, err := m.verify("m")
			return err
		}, cluster.ErrUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.device("m").mustJoin()
			before := e.ledger.written()
			err := tt.send(e, m)
			var r *cluster.Refusal
			if errors.As(err, &r) && r.Reason == cluster.ErrNotMember {
				before = e.ledger.written() // the leave or revoke that set it up is on the ledger
			}
			e.wantRefusal(err, tt.want, tt.detail, before)
		})
	}
}

// TestCoapsRequesterOfAnotherCluster: on a ledger shared by several
// clusters, a member of another cluster gets no coaps PSK here, and a DTLS
// session it opened before its join there is served nothing.
func TestCoapsRequesterOfAnotherCluster(t *testing.T) {
	e := newEnv(t)
	e.device("m").mustJoin()
	if _, err := e.core.PSK("m"); err != nil {
		t.Fatalf("PSK of a member: %v", err)
	}
	e.ledger.setCluster("m", "cluster-b")
	before := e.ledger.written()
	if _, err := e.core.PSK("m"); !errors.Is(err, cluster.ErrUnauthorized) {
		t.Errorf("PSK of a member of cluster-b: %v, want ErrUnauthorized", err)
	}
	body, err := wire.Marshal(&wire.VerifyRequest{Peer: "m"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.core.VerifyPlain(t.Context(), "m", body)
	e.wantRefusal(err, cluster.ErrNotMember, "member of cluster cluster-b", before)
}

// TestEchoAfterRestart: a CH that did not see a member join (it restarted)
// serves its first protected request only with an echo inside, and then
// spends every sequence number before it.
func TestEchoAfterRestart(t *testing.T) {
	e := newEnv(t)
	m := e.device("m").mustJoin()
	captured := m.seal(protect.PathVerify, &wire.VerifyRequest{Peer: "m"}).Body
	if _, err := e.core.Verify(t.Context(), captured, addr); err != nil {
		t.Fatal(err)
	}
	e.core = e.newCore()
	_, err := m.verify("m")
	var challenge *cluster.EchoRequired
	if !errors.As(err, &challenge) {
		t.Fatalf("first request after a restart: %v, want an echo challenge", err)
	}
	var v wire.VerifyResponse
	if err := m.call(e.core.Verify, protect.PathVerify, &wire.VerifyRequest{Peer: "m", Echo: challenge.Echo}, &v); err != nil {
		t.Fatalf("request with the echo: %v", err)
	}
	if _, err := e.core.Verify(t.Context(), captured, addr); !errors.Is(err, cluster.ErrReplay) {
		t.Fatalf("request captured before the restart: %v, want ErrReplay", err)
	}
	if _, err := m.verify("m"); err != nil {
		t.Fatalf("next request: %v", err)
	}
	// A stale echo is challenged again.
	e.core = e.newCore()
	e.advance(2 * time.Minute)
	err = m.call(e.core.Verify, protect.PathVerify, &wire.VerifyRequest{Peer: "m", Echo: challenge.Echo}, &v)
	if !errors.As(err, &challenge) {
		t.Fatalf("stale echo: %v, want a new challenge", err)
	}
}

// TestSessionRules: a session is granted only between two current members
// of this cluster, neither the requester alone; the grant and ticket open
// under each member's key, expire after SessionTTL, and are recorded.
func TestSessionRules(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *env, m1 *dev)
		peer   string
		want   error
		detail string
	}{
		{"members", func(e *env, m1 *dev) {}, "m1", nil, ""},
		{"peer is the requester", func(e *env, m1 *dev) {}, "m2", cluster.ErrPeerNotMember, "peer is the requester"},
		{"peer unknown", func(e *env, m1 *dev) {}, "nobody", cluster.ErrPeerNotMember, "unknown"},
		{"peer left", func(e *env, m1 *dev) { m1.leave() }, "m1", cluster.ErrPeerNotMember, "left"},
		{"peer revoked", func(e *env, m1 *dev) { e.core.Revoke(t.Context(), "m1", "x") }, "m1", cluster.ErrPeerNotMember, "revoked"},
		{"peer expired", func(e *env, m1 *dev) { e.ledger.expire("m1", e.now) }, "m1", cluster.ErrPeerNotMember, "expired"},
		{"peer of another cluster", func(e *env, m1 *dev) { e.ledger.setCluster("m1", "cluster-b") }, "m1",
			cluster.ErrPeerNotMember, "member of cluster cluster-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *cluster.Config) { c.SessionTTL = 90 * time.Second })
			m1 := e.device("m1").mustJoin()
			m2 := e.device("m2").mustJoin()
			tt.setup(e, m1)
			before := e.ledger.written()
			s, err := m2.session(tt.peer)
			if tt.want != nil {
				e.wantRefusal(err, tt.want, tt.detail, before)
				if e.obs.sessions != 0 {
					t.Error("a refused session was counted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			expires := e.now.Add(90 * time.Second)
			skM2, err := protect.OpenTicket(m2.keys.Ticket, clusterID, "m2", s.Grant, e.now)
			if err != nil {
				t.Fatalf("grant: %v", err)
			}
			skM1, err := protect.OpenTicket(m1.keys.Ticket, clusterID, "m1", s.Ticket, e.now)
			if err != nil {
				t.Fatalf("ticket: %v", err)
			}
			if skM1 != skM2 || s.Ticket.Initiator != "m1" || s.Ticket.Responder != "m2" || s.Grant.Expires != uint64(expires.Unix()) {
				t.Errorf("session %+v", s)
			}
			if _, err := protect.OpenTicket(m1.keys.Ticket, clusterID, "m1", s.Ticket, expires); err == nil {
				t.Error("ticket opens at its expiry")
			}
			ev := e.oneRecord(before)
			if ev.Type != ledger.EventSession || ev.Device != "m2" || ev.Peer != "m1" ||
				!bytes.Equal(ev.SessionID, s.Grant.SID) || ev.Expires != expires.Unix() || len(ev.Key) != 0 {
				t.Errorf("session record %+v", ev)
			}
			if e.obs.sessions != 1 {
				t.Errorf("sessions counted %d", e.obs.sessions)
			}
		})
	}
}

// TestLeave: a member's leave is on the ledger before the answer, names its
// block, and ends its membership; the left member's requests are refused.
func TestLeave(t *testing.T) {
	e := newEnv(t)
	m := e.device("m").mustJoin()
	l, err := m.leave()
	if err != nil {
		t.Fatal(err)
	}
	ev := e.ledger.last()
	if ev.Type != ledger.EventLeave || ev.Device != "m" || l.Height != 2 || e.status("m") != membership.Left {
		t.Fatalf("leave %+v, event %+v, status %v", l, ev, e.status("m"))
	}
	if _, err := m.leave(); !errors.Is(err, cluster.ErrNotMember) {
		t.Fatalf("second leave: %v", err)
	}
	if _, err := m.join(here); err != nil {
		t.Fatalf("rejoin after leave: %v", err)
	}
}

// TestRevoke: revocation is recorded, final, and refused for an unknown or
// already revoked ID.
func TestRevoke(t *testing.T) {
	e := newEnv(t)
	if _, err := e.core.Revoke(t.Context(), "nobody", "x"); !errors.Is(err, cluster.ErrUnknownDevice) {
		t.Fatalf("revoke unknown: %v", err)
	}
	m := e.device("m").mustJoin()
	ref, err := e.core.Revoke(t.Context(), "m", "stolen")
	if err != nil || ref.Height != 2 {
		t.Fatalf("revoke: %+v %v", ref, err)
	}
	if ev := e.ledger.last(); ev.Type != ledger.EventRevoke || ev.Reason != "stolen" {
		t.Errorf("revoke event %+v", ev)
	}
	if _, err := e.core.Revoke(t.Context(), "m", "again"); !errors.Is(err, cluster.ErrRevoked) {
		t.Fatalf("revoke twice: %v", err)
	}
	if _, err := m.join(here); !errors.Is(err, cluster.ErrRevoked) {
		t.Fatalf("join after revoke: %v", err)
	}
}

// derivationsBusy is the CH's keys while forgeries have spent the budget of
// failed derivations (keysvc.FailedDerivationRate) and the member's keys
// are in no cache: every message is refused before any ECDH.
type derivationsBusy struct{ *keysvc.Service }

func (derivationsBusy) OpenRequest(keysvc.Member, *protect.Request, string) ([]byte, error) {
	return nil, keysvc.ErrDerivationsBusy
}

// TestProtectedDerivationsBusy: a protected request the CH cannot open
// because the budget of failed derivations is spent is refused busy in the
// clear (nothing opened it), not as unauthorized (the device would take
// that for a lost membership) nor as an internal error; nothing is written.
func TestProtectedDerivationsBusy(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a").mustJoin()
	e.device("sensor-b").mustJoin()
	c, err := cluster.New(e.cfg, derivationsBusy{e.keys}, e.ledger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e.core = c
	before := e.ledger.written()
	_, err = d.verify("sensor-b")
	var r *cluster.Refusal
	var sealed *cluster.Sealed
	if !errors.As(err, &r) || !errors.Is(err, cluster.ErrBusy) || r.Detail != "member keys" || errors.As(err, &sealed) {
		t.Fatalf("verify while derivations are busy: %v, want busy: member keys, in the clear", err)
	}
	if e.ledger.written() != before {
		t.Fatal("a refused request wrote to the ledger")
	}
}
