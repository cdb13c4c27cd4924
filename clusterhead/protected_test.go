package clusterhead_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// member is a joined device whose state the test can read, to seal requests
// by hand exactly as the device library would.
type member struct {
	st  *device.State
	dev *device.Device
}

func joinMember(t *testing.T, ch *clusterhead.CH, id string) member {
	t.Helper()
	st, d := chtest.JoinedState(t, ch, id)
	return member{st, d}
}

// seal returns a protected request from m to path with the next sequence
// number, carrying msg.
func (m member) seal(t *testing.T, path string, msg any) []byte {
	t.Helper()
	keys, err := m.st.MemberKeys()
	if err != nil {
		t.Fatal(err)
	}
	pt, err := wire.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	seq := m.st.Seq
	m.st.Seq++
	b, err := protect.SealRequest(keys, m.st.Membership.Cluster, m.st.ID, seq, path, pt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProtectedRejections checks every refusal of /verify, /session and
// /leave: code, diagnostic, and an unchanged ledger.
func TestProtectedRejections(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	a := joinMember(t, ch, "sensor-a")
	b := joinMember(t, ch, "sensor-b")
	gone := joinMember(t, ch, "sensor-gone")
	kept := *gone.st // the member key as it was before leaving
	if _, err := gone.dev.Leave(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	kept.Seq = gone.st.Seq
	gone.st = &kept
	bad := joinMember(t, ch, "sensor-bad")
	if _, err := ch.Core.Revoke(chtest.Ctx(t), "sensor-bad", "test"); err != nil {
		t.Fatal(err)
	}
	post := func(path string, body []byte) chtest.Response {
		return chtest.Post(t, conn, "/"+path, message.AppCoseEncrypt0, body)
	}

	// A valid verify of a member changes nothing on the ledger; replaying it is refused.
	verifyB := a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
	expect(t, post("verify", verifyB), codes.Content, "")
	// A's talk proofs for b, as b's listener forwards them (§5.1); the first
	// is spent by a granted session.
	proofOfA := func(responder string, at time.Time) *wire.TalkProof {
		keys, err := a.st.MemberKeys()
		if err != nil {
			t.Fatal(err)
		}
		p, err := protect.NewTalkProof(keys.Talk, chtest.Cluster, "sensor-a", responder, at)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	spent := proofOfA("sensor-b", time.Now())
	expect(t, post("session", b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a", Proof: spent})), codes.Content, "")

	cases := []struct {
		name string
		path string
		body func() []byte
		code codes.Code
		diag string
		// sealed: the request opened, so the refusal is sealed for its
		// member (PROTOCOL.md §4.1); diag is then what it opens to
		sealed bool
	}{
		{"garbage", "verify", func() []byte { return []byte{0x83, 0x01} }, codes.BadRequest, "malformed: protected request", false},
		{"unknown kid", "verify", func() []byte {
			ghost := member{st: &device.State{ID: "ghost", Key: a.st.Key, Membership: a.st.Membership}}
			return ghost.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
		}, codes.Unauthorized, "unauthorized", false},
		{"replayed verify", "verify", func() []byte { return verifyB }, codes.Unauthorized, "replay", true},
		{"bit flip in ciphertext", "verify", func() []byte {
			x := a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
			x[len(x)-1] ^= 0x01
			return x
		}, codes.Unauthorized, "unauthorized", false},
		{"sealed for verify, sent to leave", "leave", func() []byte {
			return a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
		}, codes.Unauthorized, "unauthorized", false},
		{"left member", "verify", func() []byte {
			return gone.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
		}, codes.Forbidden, "not a member: left", true},
		{"revoked member", "session", func() []byte {
			return bad.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a"})
		}, codes.Forbidden, "not a member: revoked", true},
		{"session with unknown peer", "session", func() []byte {
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "nobody"})
		}, codes.Forbidden, "peer not a member: unknown", true},
		{"session with revoked peer", "session", func() []byte {
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-bad"})
		}, codes.Forbidden, "peer not a member: revoked", true},
		{"session with itself", "session", func() []byte {
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-b"})
		}, codes.Forbidden, "peer not a member: peer is the requester", true},
		{"session forwarding a forged talk proof", "session", func() []byte {
			p := proofOfA("sensor-b", time.Now())
			p.Tag[0] ^= 1
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a", Proof: p})
		}, codes.Unauthorized, "bad talk proof", true},
		{"session forwarding a talk proof in an unknown initiator's name", "session", func() []byte {
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "nobody", Proof: proofOfA("sensor-b", time.Now())})
		}, codes.Unauthorized, "bad talk proof", true},
		{"session forwarding a talk proof for another responder", "session", func() []byte {
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a", Proof: proofOfA("sensor-gone", time.Now())})
		}, codes.Unauthorized, "bad talk proof", true},
		{"session forwarding a stale talk proof", "session", func() []byte {
			p := proofOfA("sensor-b", time.Now().Add(-protect.TalkProofLifetime-2*time.Second))
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a", Proof: p})
		}, codes.Unauthorized, "bad talk proof: stale", true},
		{"session forwarding a spent talk proof", "session", func() []byte {
			return b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a", Proof: spent})
		}, codes.Unauthorized, "bad talk proof: replay", true},
		{"plaintext not a verify request", "verify", func() []byte {
			return a.seal(t, protect.PathVerify, &wire.LeaveRequest{})
		}, codes.BadRequest, "malformed: verify request", true},
		{"wrong content-format", "verify", func() []byte { return nil }, codes.UnsupportedMediaType, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body()
			before := chtest.Snap(t, ch)
			cf := message.AppCoseEncrypt0
			if tc.code == codes.UnsupportedMediaType {
				cf = message.TextPlain
			}
			r := chtest.Post(t, conn, "/"+tc.path, cf, body)
			if r.Sealed != tc.sealed {
				t.Fatalf("%v %q: sealed %v, want %v", r.Code, r.Diagnostic, r.Sealed, tc.sealed)
			}
			if tc.sealed {
				r.Diagnostic = refusal(t, []member{a, b, gone, bad}, tc.path, body, r)
			}
			expect(t, r, tc.code, tc.diag)
			chtest.Unchanged(t, ch, before)
		})
	}

	t.Run("replayed session request grants nothing", func(t *testing.T) {
		req := b.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-a"})
		expect(t, post("session", req), codes.Content, "")
		before := chtest.Snap(t, ch)
		r := post("session", req)
		r.Diagnostic = refusal(t, []member{b}, protect.PathSession, req, r)
		expect(t, r, codes.Unauthorized, "replay")
		chtest.Unchanged(t, ch, before)
	})

	t.Run("member key of another cluster", func(t *testing.T) {
		other := chtest.Start(t, "")
		before := chtest.Snap(t, other)
		r := chtest.Post(t, chtest.Raw(t, other), "/verify", message.AppCoseEncrypt0,
			a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"}))
		expect(t, r, codes.Unauthorized, "unauthorized")
		chtest.Unchanged(t, other, before)
	})
}

// refusal opens the CH's sealed refusal r of body, a protected request to
// path of one of members, as that member does.
func refusal(t *testing.T, members []member, path string, body []byte, r chtest.Response) string {
	t.Helper()
	req, err := protect.ParseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.st.ID != req.KID {
			continue
		}
		keys, err := m.st.MemberKeys()
		if err != nil {
			t.Fatal(err)
		}
		diag, err := protect.OpenRefusal(keys, m.st.Membership.Cluster, req.KID, req.Seq, path, r.Body)
		if err != nil {
			t.Fatalf("the sealed refusal %v does not open for %s: %v", r.Code, req.KID, err)
		}
		return diag
	}
	t.Fatalf("no member %s", req.KID)
	return ""
}

// TestRestartKeepsMembersAndChallenges restarts the CH on the same data
// directory: members stay members, the chain verifies, a request captured
// before the restart is not processed after it (echo challenge, nothing
// written), and the device library answers the challenge by itself.
func TestRestartKeepsMembersAndChallenges(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	captured := a.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-b"})
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}

	ch = chtest.Start(t, dir)
	before := chtest.Snap(t, ch)
	r := chtest.Post(t, chtest.Raw(t, ch), "/session", message.AppCoseEncrypt0, captured)
	if r.Code != codes.Unauthorized || r.Echo == nil {
		t.Fatalf("captured request after restart: got %v %q, want 4.01 with Echo", r.Code, r.Diagnostic)
	}
	chtest.Unchanged(t, ch, before)

	b2 := chtest.Dial(t, ch, a.st) // same state, new association
	v, err := b2.Verify(chtest.Ctx(t), "sensor-b")
	if err != nil || v.Status.Membership() != membership.Member {
		t.Fatalf("verify after restart: %+v %v", v, err)
	}
	if err := ch.Ledger.Verify(chtest.Ctx(t), nil); err != nil {
		t.Fatalf("chain after restart: %v", err)
	}
}

// TestExpiredMembership: once a membership expires, verify warns "expired"
// and the member's own requests are refused until it rejoins.
func TestExpiredMembership(t *testing.T) {
	var skew atomic.Int64 // how far the CH's clock is ahead
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Cluster.MemberTTL = time.Hour
		c.Cluster.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	defer ch.Close()
	joinMember(t, ch, "sensor-a")
	b := joinMember(t, ch, "sensor-b")
	skew.Store(int64(2 * time.Hour))

	_, err := b.dev.Verify(chtest.Ctx(t), "sensor-a")
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Forbidden || ce.Diagnostic != "not a member: expired" || !ce.Sealed {
		t.Fatalf("request by an expired member: %v", err)
	}
	if _, err := b.dev.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	v, err := b.dev.Verify(chtest.Ctx(t), "sensor-a")
	if !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Expired {
		t.Fatalf("verify of an expired member: %+v %v", v, err)
	}
}

// TestAuditRecordsSurviveClose: a /session answer does not wait for its
// record (docs/PROTOCOL.md §4.4), but a clean shutdown right after the
// answers writes every record: the grant log holds one record per grant,
// with the IDs and no key, and the ledger one session-batch event whose root
// commits to them; each record's inclusion path checks against that event.
func TestAuditRecordsSurviveClose(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	const grants = 20
	for range grants {
		if _, _, err := a.dev.Session(chtest.Ctx(t), "sensor-b"); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Close(); err != nil { // no Flush by the test: Close must do it
		t.Fatal(err)
	}
	l, g, closeStopped := openStopped(t, dir)
	defer closeStopped()
	var batches []ledger.Event
	err := l.Blocks(0, func(b ledger.Block) error {
		for _, ev := range b.Events {
			switch ev.Type {
			case ledger.EventSession:
				t.Errorf("a session event on the ledger: %+v", ev)
			case ledger.EventSessionBatch:
				batches = append(batches, ev)
			}
		}
		return nil
	})
	if err != nil || len(batches) != 1 || batches[0].Count != grants || batches[0].Device != ch.Core.Config().ID {
		t.Fatalf("session batches on the ledger: %+v (%v), want one of %d grants", batches, err, grants)
	}
	recs, err := g.Records(batches[0].Batch)
	if err != nil || len(recs) != grants {
		t.Fatalf("%d records of batch %d (%v), want %d", len(recs), batches[0].Batch, err, grants)
	}
	for i, rec := range recs {
		var ev ledger.Event
		if err := wire.Unmarshal(rec, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != ledger.EventSession || ev.Device != "sensor-a" || ev.Peer != "sensor-b" || len(ev.SessionID) != wire.NonceLen || ev.Key != nil {
			t.Errorf("grant record %d: %+v", i, ev)
		}
		path, err := ledger.GrantInclusion(recs, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.VerifyGrantInclusion(batches[0], rec, uint64(i), path); err != nil {
			t.Errorf("grant %d: %v", i, err)
		}
	}
	s, err := ledger.CheckGrants(chtest.Ctx(t), l, g, ch.Core.Config().ID)
	if err != nil || s.Grants != grants || s.Batches != 1 {
		t.Fatalf("CheckGrants: %+v %v", s, err)
	}
}

// TestNoReplayAfterRestartEcho: requests a member sent before a CH restart
// stay dead after it. The member's first request after the restart is
// challenged and its retry, carrying the echo, is served; the CH then
// refuses every older sequence number (RFC 8613 Appendix B.1.2), even those
// still inside a 64-wide window below the new one, and the ledger does not
// change.
func TestNoReplayAfterRestartEcho(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	conn := chtest.Raw(t, ch)
	var captured [][]byte
	for range 5 {
		req := a.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-b"})
		expect(t, chtest.Post(t, conn, "/session", message.AppCoseEncrypt0, req), codes.Content, "")
		captured = append(captured, req)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}

	ch = chtest.Start(t, dir)
	if _, _, err := chtest.Dial(t, ch, a.st).Session(chtest.Ctx(t), "sensor-b"); err != nil {
		t.Fatalf("session after restart: %v", err)
	}
	before := chtest.Snap(t, ch)
	conn = chtest.Raw(t, ch)
	for i, req := range captured {
		if r := chtest.Post(t, conn, "/session", message.AppCoseEncrypt0, req); r.Code != codes.Unauthorized {
			t.Errorf("request %d from before the restart: got %v %q, want 4.01", i, r.Code, r.Diagnostic)
		}
	}
	chtest.Unchanged(t, ch, before)
}

// evictionCH starts a CH with room for one member's replay state and a
// clock the test moves past a state's idle time (cluster's evictable: an
// echo's lifetime and a second), with two joined members: sensor-a holds the
// one state, sensor-b has none.
func evictionCH(t *testing.T) (ch *clusterhead.CH, a, b member, idle func()) {
	var skew atomic.Int64
	ch = chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Cluster.ReplayStates = 1
		c.Cluster.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	a = joinMember(t, ch, "sensor-a")
	b = joinMember(t, ch, "sensor-b")
	return ch, a, b, func() { skew.Add(int64(62 * time.Second)) }
}

// TestReplayStateEviction: a full table of replay states makes room only by
// evicting a state idle past an echo's lifetime. Until then a newcomer is
// refused 5.03 busy and the active member keeps its window; after, the
// newcomer proves freshness with an echo (the device library answers the
// challenge by itself), and the evicted member's earlier requests stay
// refused when it comes back.
func TestReplayStateEviction(t *testing.T) {
	ch, a, b, idle := evictionCH(t)
	conn := chtest.Raw(t, ch)
	before := chtest.Snap(t, ch)
	body := b.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-a"})
	r := chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, body)
	if r.Code != codes.ServiceUnavailable || refusal(t, []member{b}, protect.PathVerify, body, r) != "busy" {
		t.Fatalf("newcomer while the table is full of active states: got %v %q, want 5.03 busy", r.Code, r.Diagnostic)
	}
	chtest.Unchanged(t, ch, before)
	captured := a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
	if r := chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, captured); r.Code != codes.Content {
		t.Fatalf("active member next to a refused newcomer: got %v %q, want 2.05 without an echo", r.Code, r.Diagnostic)
	}
	idle()
	if v, err := b.dev.Verify(chtest.Ctx(t), "sensor-a"); err != nil || v.Status.Membership() != membership.Member {
		t.Fatalf("newcomer once the state is idle: %+v %v", v, err)
	}
	idle()
	before = chtest.Snap(t, ch)
	r = chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, captured)
	if r.Code != codes.Unauthorized || r.Echo == nil {
		t.Fatalf("evicted member's captured request: got %v %q, want 4.01 with Echo", r.Code, r.Diagnostic)
	}
	if v, err := a.dev.Verify(chtest.Ctx(t), "sensor-b"); err != nil || v.Status.Membership() != membership.Member {
		t.Fatalf("evicted member comes back: %+v %v", v, err)
	}
	if r := chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, captured); r.Code != codes.Unauthorized {
		t.Errorf("captured request after the comeback: got %v %q, want 4.01", r.Code, r.Diagnostic)
	}
	chtest.Unchanged(t, ch, before)
}

// TestEchoRequestNotReplayedAfterEviction: a member's request that carried
// an echo cannot be served twice. Its state is evicted only once idle past
// the echo's lifetime, so a replay meets the live window (4.01 replay), a
// full table (5.03), or a new window whose echo check it fails (4.01 +
// Echo): one session granted, whatever comes between.
func TestEchoRequestNotReplayedAfterEviction(t *testing.T) {
	ch, a, b, idle := evictionCH(t)
	conn := chtest.Raw(t, ch)
	idle()
	if _, err := b.dev.Verify(chtest.Ctx(t), "sensor-a"); err != nil { // evicts a's state
		t.Fatal(err)
	}
	idle()
	r := chtest.Post(t, conn, "/session", message.AppCoseEncrypt0, a.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-b"}))
	if r.Code != codes.Unauthorized || r.Echo == nil {
		t.Fatalf("member without a state: got %v %q, want 4.01 with Echo", r.Code, r.Diagnostic)
	}
	withEcho := a.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-b", Echo: r.Echo})
	if r := chtest.Post(t, conn, "/session", message.AppCoseEncrypt0, withEcho); r.Code != codes.Content {
		t.Fatalf("request with the echo: got %v %q", r.Code, r.Diagnostic)
	}
	before := chtest.Snap(t, ch)
	replay := func(when string, want codes.Code, echo bool) {
		t.Helper()
		r := chtest.Post(t, conn, "/session", message.AppCoseEncrypt0, withEcho)
		if r.Code != want || (r.Echo != nil) != echo {
			t.Errorf("replay %s: got %v %q (echo %v), want %v (echo %v)", when, r.Code, r.Diagnostic, r.Echo != nil, want, echo)
		}
	}
	replay("at once", codes.Unauthorized, false)
	// Neither a forged datagram naming b nor b's own request can push a's
	// state out while it is active.
	forged := b.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-a"})
	forged[len(forged)-1] ^= 1
	if r := chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, forged); r.Code != codes.Unauthorized {
		t.Fatalf("forged request: got %v %q, want 4.01", r.Code, r.Diagnostic)
	}
	replay("after a forged datagram naming b", codes.Unauthorized, false)
	if _, err := b.dev.Verify(chtest.Ctx(t), "sensor-a"); err == nil {
		t.Fatal("b served while a's state is active and the table full")
	}
	replay("after b tried to take a's place", codes.Unauthorized, false)
	idle()
	if _, err := b.dev.Verify(chtest.Ctx(t), "sensor-a"); err != nil { // evicts a's state
		t.Fatal(err)
	}
	replay("once a's state is evicted", codes.ServiceUnavailable, false)
	idle()
	replay("into a new state", codes.Unauthorized, true)
	chtest.Unchanged(t, ch, before)
}

// TestForgedRequestKeepsReplayState: a datagram that does not authenticate
// makes no replay state, so it cannot push a member's out: the member's next
// request is served without an echo.
func TestForgedRequestKeepsReplayState(t *testing.T) {
	ch, a, b, _ := evictionCH(t)
	conn := chtest.Raw(t, ch)
	before := chtest.Snap(t, ch)
	for i := range 3 {
		forged := b.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-a"})
		forged[len(forged)-1-i] ^= 1
		if r := chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, forged); r.Code != codes.Unauthorized || r.Echo != nil {
			t.Fatalf("forged request %d: got %v %q (echo %v), want 4.01 without Echo", i, r.Code, r.Diagnostic, r.Echo != nil)
		}
	}
	chtest.Unchanged(t, ch, before)
	r := chtest.Post(t, conn, "/verify", message.AppCoseEncrypt0, a.seal(t, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"}))
	if r.Code != codes.Content {
		t.Fatalf("member after forged requests naming another: got %v %q, want 2.05 without an echo", r.Code, r.Diagnostic)
	}
}

// TestSessionGrantBatches: with batches of 8, 20 grants make two full
// batches while serving and a third of 4 at Close; the ledger holds three
// session-batch events and no session event, and the grant log checks out
// against them after a restart (which finds nothing to recover).
func TestSessionGrantBatches(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir, func(c *clusterhead.Config) { c.Cluster.GrantBatch = 8; c.Cluster.GrantPeriod = time.Hour })
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	for range 20 {
		if _, _, err := a.dev.Session(chtest.Ctx(t), "sensor-b"); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	ch = chtest.Start(t, dir)
	var counts []uint64
	err := ch.Ledger.Blocks(0, func(b ledger.Block) error {
		for _, ev := range b.Events {
			switch ev.Type {
			case ledger.EventSession:
				t.Errorf("a session event on the ledger: %+v", ev)
			case ledger.EventSessionBatch:
				counts = append(counts, ev.Count)
			}
		}
		return nil
	})
	if err != nil || fmt.Sprint(counts) != "[8 8 4]" {
		t.Fatalf("session batches of %v grants (%v), want [8 8 4]", counts, err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if s := checkGrants(t, dir); s.Grants != 20 || s.Batches != 3 {
		t.Fatalf("CheckGrants: %+v", s)
	}
}

// openStopped opens the ledger and the grant log of the stopped CH in dir;
// closeBoth closes both.
func openStopped(t *testing.T, dir string) (l *ledger.Bolt, g *ledger.GrantLog, closeBoth func()) {
	t.Helper()
	l, err := clusterhead.OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if g, err = clusterhead.OpenGrantLog(dir); err != nil {
		l.Close()
		t.Fatal(err)
	}
	return l, g, func() { g.Close(); l.Close() }
}

// checkGrants checks the session batches of the stopped CH in dir against
// its grant log (what 'ledger verify' does) and returns the summary.
func checkGrants(t *testing.T, dir string) ledger.GrantSummary {
	t.Helper()
	l, g, closeStopped := openStopped(t, dir)
	defer closeStopped()
	s, err := ledger.CheckGrants(chtest.Ctx(t), l, g, l.Cluster())
	if err != nil {
		t.Fatalf("CheckGrants: %+v %v", s, err)
	}
	return s
}

// TestBackupCarriesGrantLog: a backup of a running CH holds its grant log;
// a CH restored from it serves, and its ledger's session batches check out
// against the restored grants.db.
func TestBackupCarriesGrantLog(t *testing.T) {
	ch := chtest.Start(t, t.TempDir())
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	for range 5 {
		if _, _, err := a.dev.Session(chtest.Ctx(t), "sensor-b"); err != nil {
			t.Fatal(err)
		}
	}
	ch.Core.Flush()
	var archive bytes.Buffer
	if err := ch.Backup(chtest.Ctx(t), &archive); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := clusterhead.Restore(&archive, dir, nil); err != nil {
		t.Fatal(err)
	}
	restored := chtest.Start(t, dir)
	if err := restored.Close(); err != nil {
		t.Fatal(err)
	}
	if s := checkGrants(t, dir); s.Grants != 5 {
		t.Fatalf("CheckGrants of the restored CH: %+v", s)
	}
}
