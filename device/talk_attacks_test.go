package device_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// Attacks on a listener's /talk over real UDP, against a real CH: hellos
// forged by a sender with no key, replayed by an on-path attacker, or made
// by a member in another's name. None may write the ledger, take a session
// from the listener, or be acted on twice (docs/SECURITY.md).
//
// The forged and replayed hellos are built from raw CBOR and captured
// datagrams, not from this package's hello type, so the tests also run
// against the listener before talk proofs existed — where they fail.

// talkPost sends one raw /talk POST on conn and returns the answer. It
// first proves the association's address as any client does (the
// listener's 4.01 Echo challenge, docs/PROTOCOL.md §5.1), so the answer is
// the listener's judgement of the hello.
func talkPost(t *testing.T, conn *client.Conn, body []byte) chtest.Response {
	t.Helper()
	return chtest.PostVerified(t, conn, "/talk", message.AppCBOR, body)
}

func dialListener(t *testing.T, l *device.Listener) *client.Conn {
	t.Helper()
	conn, err := udp.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// talkScene is a CH with members m1, m2 and m3, m2's listener (no rate
// limit: the attacks come faster than a peer's), and one live session m1
// opened with it.
type talkScene struct {
	ch         *clusterhead.CH
	m1, m2, m3 *device.Device
	l          *device.Listener
	live       *device.Talk
}

func newTalkScene(t *testing.T, adjust ...func(*clusterhead.Config)) *talkScene {
	t.Helper()
	s := &talkScene{ch: chtest.Start(t, "", adjust...)}
	s.m1 = chtest.Joined(t, s.ch, "m1")
	s.m2 = chtest.Joined(t, s.ch, "m2")
	s.m3 = chtest.Joined(t, s.ch, "m3")
	var err error
	s.l, err = s.m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.l.Close() })
	if s.live, err = s.m1.Talk(chtest.Ctx(t), s.l.Addr().String(), "m2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.live.Close() })
	return s
}

// alive checks that the session m1 opened before the attack still works
// (the test goes on: the ledger's state is checked after it).
func (s *talkScene) alive(t *testing.T) {
	t.Helper()
	if reply, err := s.live.Send(chtest.Ctx(t), []byte("still here")); err != nil || string(reply) != "still here" {
		t.Errorf("the session opened before the attack: %q, %v", reply, err)
	}
}

// TestForgedHelloWritesNothing: a hello from a sender without any key — the
// hello of before talk proofs, {1: id}, or one with a made-up proof — naming
// a real member or an unknown ID, is refused 4.01 by the listener or by its
// CH; however many arrive, none writes the ledger, and none takes the place
// of a live session at the listener (it keeps MaxSessions).
//
// Before talk proofs, each hello naming m1 made the listener ask its CH for
// a session (a session event on the ledger, a session pushing out the
// oldest), and one naming an unknown ID made it record a verify-warning.
func TestForgedHelloWritesNothing(t *testing.T) {
	s := newTalkScene(t)
	conn := dialListener(t, s.l)
	now := uint64(time.Now().Unix())
	forged := func(id string) []byte {
		return mustCBOR(t, map[int]any{1: id, 2: "m2", 3: []any{randomBytes(t, 12), now, randomBytes(t, 16)}})
	}
	hellos := []struct {
		name string
		body []byte
		n    int
		diag string
	}{
		{"no proof, naming a member", mustCBOR(t, map[int]any{1: "m1"}), device.MaxSessions + 1, "bad talk proof: missing"},
		{"no proof, naming an unknown ID", mustCBOR(t, map[int]any{1: "nobody"}), 3, "bad talk proof: missing"},
		{"made-up proof, naming a member", nil, device.MaxSessions + 1, "bad talk proof"},
		{"made-up proof, naming an unknown ID", nil, 3, "bad talk proof"},
	}
	before := chtest.Snap(t, s.ch)
	got := map[string]map[string]int{}
	for _, h := range hellos {
		got[h.name] = map[string]int{}
		for range h.n {
			body := h.body
			if body == nil {
				body = forged(map[bool]string{true: "m1", false: "nobody"}[h.name == "made-up proof, naming a member"])
			}
			r := talkPost(t, conn, body)
			got[h.name][codeString(r.Code)+" "+r.Diagnostic]++
		}
	}
	s.alive(t)
	chtest.Unchanged(t, s.ch, before)
	for _, h := range hellos {
		if want := map[string]int{"4.01 " + h.diag: h.n}; len(got[h.name]) != 1 || got[h.name]["4.01 "+h.diag] != h.n {
			t.Errorf("%s: answers %v, want %v", h.name, got[h.name], want)
		}
	}
}

// codeString renders a CoAP code as "4.01".
func codeString(c codes.Code) string {
	return string([]byte{'0' + byte(c>>5), '.', '0' + byte(c&0x1f)/10, '0' + byte(c&0x1f)%10})
}

// helloProxy is an on-path attacker between an initiator and a listener: it
// relays datagrams both ways and keeps the payload of every request the
// initiator sends.
type helloProxy struct {
	*onPath
	mu       sync.Mutex
	captured [][]byte
}

func startProxy(t *testing.T, target string) *helloProxy {
	t.Helper()
	p := &helloProxy{}
	p.onPath = startOnPath(t, target, func(_ *onPath, toServer bool, b []byte, m *message.Message) []byte {
		if toServer && m != nil && m.Code == codes.POST {
			p.mu.Lock()
			p.captured = append(p.captured, bytes.Clone(m.Payload))
			p.mu.Unlock()
		}
		return b
	})
	return p
}

// first returns the first request payload captured.
func (p *helloProxy) first(t *testing.T) []byte {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.captured) == 0 {
		t.Fatal("the proxy captured no request")
	}
	return p.captured[0]
}

// TestReplayedHello: a hello captured on the path and sent again — to the
// same listener, or to the same device's listener after it restarted and
// forgot what it saw — is recognised and refused 4.01, writes nothing and
// takes no session, however often it comes; the genuine talk it was copied
// from works.
//
// Before talk proofs, every copy of a captured hello got the listener a new
// session from its CH, each a session event on the ledger.
func TestReplayedHello(t *testing.T) {
	s := newTalkScene(t)
	proxy := startProxy(t, s.l.Addr().String())
	talk, err := s.m1.Talk(chtest.Ctx(t), proxy.addr(), "m2")
	if err != nil {
		t.Fatalf("genuine talk through the proxy: %v", err)
	}
	defer talk.Close()
	hello := proxy.first(t)

	before := chtest.Snap(t, s.ch)
	conn := dialListener(t, s.l)
	var answers []string
	for range device.MaxSessions + 1 {
		r := talkPost(t, conn, hello)
		answers = append(answers, codeString(r.Code)+" "+r.Diagnostic)
	}
	// The same device listening again, on a new port: its cache of hellos is
	// gone, so it asks the CH, which remembers the spent proof.
	again, err := s.m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	r := talkPost(t, dialListener(t, again), hello)
	answers = append(answers, codeString(r.Code)+" "+r.Diagnostic)
	s.alive(t)
	chtest.Unchanged(t, s.ch, before)
	if reply, err := talk.Send(chtest.Ctx(t), []byte("genuine")); err != nil || string(reply) != "genuine" {
		t.Fatalf("the genuine talk: %q, %v", reply, err)
	}
	for i, a := range answers {
		if a != "4.01 bad talk proof: replay" {
			t.Fatalf("copy %d of the captured hello: %q, want 4.01 bad talk proof: replay (all: %q)", i, a, answers)
		}
	}
}

// TestHelloInAnotherName: a member that sends a hello in another member's
// name — its own proof under the other's ID, or the other's genuine hello
// for a third device — is refused 4.01 and writes nothing; the typed error
// M1 gets for a refused proof is ErrTalkProofRefused.
func TestHelloInAnotherName(t *testing.T) {
	s := newTalkScene(t)
	conn := dialListener(t, s.l)
	own, err := s.m3.Hello("m2") // m3's genuine hello to m2 ...
	if err != nil {
		t.Fatal(err)
	}
	var h map[int]any
	if err := wire.Unmarshal(own, &h); err != nil {
		t.Fatal(err)
	}
	h[1] = "m1"                    // ... claiming to be m1
	forM3, err := s.m1.Hello("m3") // m1's genuine hello to m3, delivered to m2
	if err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, s.ch)
	for name, c := range map[string]struct {
		body []byte
		want string
	}{
		"m3's proof in m1's name": {mustCBOR(t, h), "4.01 bad talk proof"},
		"m1's hello to m3":        {forM3, "4.01 bad talk proof: wrong responder"},
	} {
		if r := talkPost(t, conn, c.body); codeString(r.Code)+" "+r.Diagnostic != c.want {
			t.Errorf("%s: %v %q, want %s", name, r.Code, r.Diagnostic, c.want)
		}
	}
	chtest.Unchanged(t, s.ch, before)
	s.alive(t)

	// M1 whose clock is two minutes fast: the listener refuses its proof as
	// stale, and M1 gets the typed error.
	c := &clock{}
	c.advance(2 * time.Minute)
	fast := joinedWithClock(t, s.ch, "m4", c)
	before = chtest.Snap(t, s.ch)
	_, err = fast.Talk(chtest.Ctx(t), s.l.Addr().String(), "m2")
	var ce *device.CodeError
	if !errors.Is(err, device.ErrTalkProofRefused) || !errors.As(err, &ce) || ce.Code != codes.Unauthorized ||
		ce.Diagnostic != "bad talk proof: stale" {
		t.Fatalf("talk with a stale proof: %v, want ErrTalkProofRefused 4.01 bad talk proof: stale", err)
	}
	chtest.Unchanged(t, s.ch, before)
}

// TestHelloFromFormerMember: a device that proves its identity under the
// member key of its last join but has left or was revoked gets 4.03
// "warning: <status>" from the listener (a *Warning); the warning is
// recorded once as a verify-warning of the listener's device about it and
// counted in the CH's metrics, and the listener's sessions are untouched.
func TestHelloFromFormerMember(t *testing.T) {
	s := newTalkScene(t, func(c *clusterhead.Config) { c.Metrics = "127.0.0.1:0" })
	ctx := chtest.Ctx(t)
	st, m5 := chtest.JoinedState(t, s.ch, "m5")
	kept := *st // the device file as it was before the leave
	if _, err := m5.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	left := chtest.Dial(t, s.ch, &kept)
	if _, err := s.ch.Core.Revoke(ctx, "m3", "stolen"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		d      *device.Device
		status string
	}{{left, "left"}, {s.m3, "revoked"}} {
		t.Run(c.status, func(t *testing.T) {
			before := chtest.Snap(t, s.ch)
			_, err := c.d.Talk(ctx, s.l.Addr().String(), "m2")
			var w *device.Warning
			if !errors.As(err, &w) || w.Detail != "warning: "+c.status {
				t.Fatalf("talk: %v, want a warning: %s", err, c.status)
			}
			recs := chtest.AuditSince(t, s.ch, before)
			if len(recs) != 1 || recs[0].Type != ledger.EventVerifyWarning || recs[0].Device != "m2" ||
				recs[0].Peer != c.d.ID() || recs[0].Reason != c.status {
				t.Fatalf("recorded since: %+v, want one verify-warning of m2 about %s", recs, c.d.ID())
			}
			s.alive(t)
		})
	}
	m := chtest.Scrape(t, s.ch.MetricsAddr())
	for _, series := range []string{`iotguard_verify_warnings_total{reason="left"}`, `iotguard_verify_warnings_total{reason="revoked"}`} {
		if m[series] != 1 {
			t.Errorf("metrics: %s %d, want 1", series, m[series])
		}
	}
}
