package device_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Attacks on tickets, grants and M2M messages, over real UDP against a real
// cluster head and real device listeners. Ledger snapshots are taken around
// every rejected step: a device-side refusal must not need, or cause, any
// change at the CH.

// clock is a device clock the test can move forward.
type clock struct{ skew atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *clock) advance(d time.Duration) { c.skew.Add(int64(d)) }

func joinedWithClock(t *testing.T, ch *clusterhead.CH, id string, c *clock) *device.Device {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, ch, st)
	d, err := device.Dial(ch.Addr(), st, device.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return d
}

// fakePeer is a hostile M2: a real CoAP server whose /talk answers whatever
// bytes the test sets, as a device that tampers with or replays tickets would.
type fakePeer struct {
	mu   sync.Mutex
	body []byte
	addr string
	stop func() // stops the server
}

func startFakePeer(t testing.TB) *fakePeer {
	t.Helper()
	p := &fakePeer{}
	if err := p.serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// serve starts the peer's server on a new port (p.addr), after stopping the
// one it ran, if any.
func (p *fakePeer) serve() error {
	if p.stop != nil {
		p.stop()
	}
	router := mux.NewRouter()
	router.Handle("/talk", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		p.mu.Lock()
		body := p.body
		p.mu.Unlock()
		_ = w.SetResponse(codes.Content, message.AppCBOR, bytes.NewReader(body))
	}))
	conn, err := coapnet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := udp.NewServer(options.WithMux(router))
	done := make(chan struct{})
	go func() { _ = srv.Serve(conn); close(done) }()
	p.stop = sync.OnceFunc(func() { srv.Stop(); <-done })
	p.addr = conn.LocalAddr().String()
	return nil
}

func (p *fakePeer) answer(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body = b
}

func talkResponse(t *testing.T, id string, ticket *wire.Ticket) []byte {
	t.Helper()
	b, err := wire.Marshal(&wire.TalkResponse{ID: id, Ticket: *ticket})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTicketsBoundToRecipient: a ticket sealed for M1 (or the grant sealed
// for M2) opens for nobody else — not for a third member M3 that obtained
// it, whether handed over a /talk answer or opened directly, and not with
// the recipient field rewritten to M3.
func TestTicketsBoundToRecipient(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	m1 := chtest.Joined(t, ch, "m1")
	m2 := chtest.Joined(t, ch, "m2")
	m3 := chtest.Joined(t, ch, "m3")
	_, ticket, err := m2.Session(ctx, "m1") // M2 asks for a session with M1
	if err != nil {
		t.Fatal(err)
	}
	peer := startFakePeer(t)

	_, m3Ticket, err := m2.Session(ctx, "m3") // another session: M2 with M3

	if err != nil {
		t.Fatal(err)
	}
	rewritten := *ticket
	rewritten.Recipient = "m3"

	cases := []struct {
		name                 string
		who                  *device.Device
		tk                   *wire.Ticket
		peerID               string
		initiator, responder string
	}{
		{"M1's ticket opened by M3", m3, ticket, "m2", "m1", "m2"},
		{"M1's ticket opened by M3 as if it were the initiator", m3, ticket, "m2", "m3", "m2"},
		{"M1's ticket with its recipient rewritten to M3", m3, &rewritten, "m2", "m1", "m2"},
		{"M3's ticket (of another session) opened by M1", m1, m3Ticket, "m2", "m1", "m2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := chtest.Snap(t, ch)
			if s, err := tc.who.OpenTicket(tc.tk, tc.peerID, tc.initiator, tc.responder); err == nil || s != nil {
				t.Fatalf("OpenTicket: session %v, err %v", s, err)
			} else if !errors.Is(err, device.ErrBadResponse) {
				t.Fatalf("OpenTicket error %v is not ErrBadResponse", err)
			}
			chtest.Unchanged(t, ch, before)
		})
	}

	// Over UDP: a hostile M2 answers M3's (and then M1's) request to talk
	// with a ticket that is not theirs.
	t.Run("M1's ticket served to M3 over /talk", func(t *testing.T) {
		peer.answer(talkResponse(t, "m2", ticket))
		before := chtest.Snap(t, ch)
		if _, err := m3.Talk(ctx, peer.addr, "m2"); !errors.Is(err, device.ErrBadResponse) {
			t.Fatalf("M3 talked with M1's ticket: %v", err)
		}
		chtest.Unchanged(t, ch, before)
	})
	t.Run("control: M1's ticket served to M1", func(t *testing.T) {
		peer.answer(talkResponse(t, "m2", ticket))
		tk, err := m1.Talk(ctx, peer.addr, "m2")
		if err != nil {
			t.Fatalf("M1 refused its own ticket: %v", err)
		}
		tk.Close()
	})
}

// TestGrantReplayedToThirdDevice: M2's grant (the half of /session sealed
// for M2) replayed to a third member M3 — by a hostile peer over /talk or
// handed directly — opens nothing, and neither does it for M1.
func TestGrantReplayedToThirdDevice(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	m1 := chtest.Joined(t, ch, "m1")
	chtest.Joined(t, ch, "m2")
	m3 := chtest.Joined(t, ch, "m3")

	// M2's side: capture the raw grant by asking for the session the way the
	// device library does and keeping the ticket for M2.
	st2, m2 := chtest.JoinedState(t, ch, "m2x")
	grant := sessionGrant(t, ch, st2, "m1")
	if grant.Recipient != "m2x" || grant.Initiator != "m1" || grant.Responder != "m2x" {
		t.Fatalf("grant %+v", grant)
	}
	// The genuine recipient opens it: the grant is valid.
	if _, err := m2.OpenTicket(grant, "m1", "m1", "m2x"); err != nil {
		t.Fatalf("M2 cannot open its own grant: %v", err)
	}

	peer := startFakePeer(t)
	for _, tc := range []struct {
		name string
		who  *device.Device
	}{{"to M3", m3}, {"to M1", m1}} {
		t.Run(tc.name, func(t *testing.T) {
			before := chtest.Snap(t, ch)
			if _, err := tc.who.OpenTicket(grant, "m2x", "m1", "m2x"); !errors.Is(err, device.ErrBadResponse) {
				t.Fatalf("OpenTicket of M2's grant: %v", err)
			}
			peer.answer(talkResponse(t, "m2x", grant))
			if _, err := tc.who.Talk(ctx, peer.addr, "m2x"); !errors.Is(err, device.ErrBadResponse) {
				t.Fatalf("Talk with M2's grant: %v", err)
			}
			chtest.Unchanged(t, ch, before)
		})
	}
}

// sealByHand returns msg sealed as st's device's next request to path, as
// the device library seals it, its sequence number and the keys that open
// the answer.
func sealByHand(t *testing.T, st *device.State, path string, msg any) ([]byte, uint64, *protect.MemberKeys) {
	t.Helper()
	keys, err := st.MemberKeys()
	if err != nil {
		t.Fatal(err)
	}
	pt, err := wire.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	seq := st.Seq
	st.Seq++
	req, err := protect.SealRequest(keys, st.Membership.Cluster, st.ID, seq, path, pt)
	if err != nil {
		t.Fatal(err)
	}
	return req, seq, keys
}

// sessionGrant asks the CH for a session with peer as st's device, sealing
// the request by hand, and returns the grant (the ticket for st's device).
func sessionGrant(t *testing.T, ch *clusterhead.CH, st *device.State, peer string) *wire.Ticket {
	t.Helper()
	req, seq, keys := sealByHand(t, st, protect.PathSession, &wire.SessionRequest{Peer: peer})
	r := chtest.Post(t, chtest.Raw(t, ch), "/session", message.AppCoseEncrypt0, req)
	if r.Code != codes.Content {
		t.Fatalf("/session: %v %q", r.Code, r.Diagnostic)
	}
	plain, err := protect.OpenResponse(keys, st.Membership.Cluster, st.ID, seq, protect.PathSession, r.Body)
	if err != nil {
		t.Fatal(err)
	}
	var resp wire.SessionResponse
	if err := wire.Decode(plain, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Grant
}

// TestExpiredTicketAndGrant: past the session expiry the initiator refuses
// the ticket, the responder refuses the grant, and an established session
// refuses to seal or open — on the device and at the /m2m listener (4.01).
func TestExpiredTicketAndGrant(t *testing.T) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.Cluster.SessionTTL = time.Minute })
	ctx := chtest.Ctx(t)
	c1, c2 := &clock{}, &clock{}
	m1 := joinedWithClock(t, ch, "m1", c1)
	m2 := joinedWithClock(t, ch, "m2", c2)

	_, ticket, err := m2.Session(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ticket", func(t *testing.T) {
		before := chtest.Snap(t, ch)
		c1.advance(2 * time.Minute)
		_, err := m1.OpenTicket(ticket, "m2", "m1", "m2")
		c1.advance(-2 * time.Minute)
		if !errors.Is(err, device.ErrBadResponse) {
			t.Fatalf("expired ticket: %v", err)
		}
		chtest.Unchanged(t, ch, before)
		if _, err := m1.OpenTicket(ticket, "m2", "m1", "m2"); err != nil {
			t.Fatalf("control: the same ticket on time: %v", err)
		}
	})
	t.Run("grant", func(t *testing.T) {
		// The CH's clock is right; M2's runs ahead, so the fresh grant the
		// CH answers with is already expired for M2.
		c2.advance(2 * time.Minute)
		defer c2.advance(-2 * time.Minute)
		if _, _, err := m2.Session(ctx, "m1"); !errors.Is(err, device.ErrBadResponse) {
			t.Fatalf("expired grant: %v", err)
		}
	})
	t.Run("established session", func(t *testing.T) {
		got := make(chan string, 4)
		l, err := m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { got <- string(msg); return nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		talk, err := m1.Talk(ctx, l.Addr().String(), "m2")
		if err != nil {
			t.Fatal(err)
		}
		defer talk.Close()
		if _, err := talk.Send(ctx, []byte("on time")); err != nil {
			t.Fatalf("send on time: %v", err)
		}
		sealed, err := talk.Session.Seal([]byte("sealed on time, delivered late"))
		if err != nil {
			t.Fatal(err)
		}
		c2.advance(2 * time.Minute) // the listener's clock passes the expiry
		defer c2.advance(-2 * time.Minute)
		before := chtest.Snap(t, ch)
		_, err = talk.SendRaw(ctx, sealed)
		var ce *device.CodeError
		if !errors.As(err, &ce) || ce.Code != codes.Unauthorized {
			t.Fatalf("late message: %v, want 4.01", err)
		}
		chtest.Unchanged(t, ch, before)
		c1.advance(2 * time.Minute)
		defer c1.advance(-2 * time.Minute)
		if _, err := talk.Session.Seal([]byte("too late")); err == nil {
			t.Fatal("sealed in an expired session")
		}
		if len(got) != 1 {
			t.Fatalf("the listener handled %d messages, want only the one on time", len(got))
		}
	})
}

// pair is an established M2M session: M1's side from a real /talk with M2's
// real listener, whose handler records what it is given.
type pair struct {
	ch      *clusterhead.CH
	talk    *device.Talk
	handled atomic.Int64
	m2      *device.Device
	m1      *device.Device
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{ch: chtest.Start(t, "")}
	p.m1 = chtest.Joined(t, p.ch, "m1")
	p.m2 = chtest.Joined(t, p.ch, "m2")
	l, err := p.m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte {
		p.handled.Add(1)
		return append([]byte("ack "), msg...)
	}, nil, device.WithListenRateLimit(0)) // the attacks come faster than a peer's rate limit allows
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if p.talk, err = p.m1.Talk(chtest.Ctx(t), l.Addr().String(), "m2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.talk.Close() })
	return p
}

// seal returns n messages sealed by M1, with sequence numbers 0..n-1 if the
// session is fresh.
func (p *pair) seal(t *testing.T, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		var err error
		if out[i], err = p.talk.Session.Seal(fmt.Appendf(nil, "message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// replayOrder is a delivery order and the verdict each delivery must get:
// the 64-message window of PROTOCOL.md §5.2.
var replayOrder = []struct {
	seq  int
	ok   bool
	note string
}{
	{0, true, "first"},
	{0, false, "replay of the first"},
	{100, true, "jump ahead"},
	{37, true, "100-37 = 63: inside the window"},
	{36, false, "100-36 = 64: beyond the window"},
	{1, false, "far behind"},
	{37, false, "replay inside the window"},
	{99, true, "just behind, unseen"},
	{100, false, "replay of the highest"},
	{164, true, "window moves by 64"},
	{101, true, "164-101 = 63"},
	{100, false, "now beyond the window"},
	{165, true, "next in order"},
}

// TestM2MReplayWindowSession runs replayOrder through device.Session.Open.
func TestM2MReplayWindowSession(t *testing.T) {
	ch := chtest.Start(t, "")
	m1 := chtest.Joined(t, ch, "m1")
	m2 := chtest.Joined(t, ch, "m2")
	s2, ticket, err := m2.Session(chtest.Ctx(t), "m1")
	if err != nil {
		t.Fatal(err)
	}
	s1, err := m1.OpenTicket(ticket, "m2", "m1", "m2")
	if err != nil {
		t.Fatal(err)
	}
	var sealed [][]byte
	for i := 0; i <= 165; i++ {
		b, err := s1.Seal(fmt.Appendf(nil, "message %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, b)
	}
	for _, step := range replayOrder {
		pt, err := s2.Open(sealed[step.seq])
		if step.ok && (err != nil || string(pt) != fmt.Sprintf("message %d", step.seq)) {
			t.Fatalf("seq %d (%s): %q, %v", step.seq, step.note, pt, err)
		}
		if !step.ok && !errors.Is(err, device.ErrReplay) {
			t.Fatalf("seq %d (%s): got %v, want ErrReplay", step.seq, step.note, err)
		}
	}
	// A message of this session sent back to its own sender is refused too.
	if _, err := s1.Open(sealed[166-1]); err == nil {
		t.Fatal("M1 opened its own message")
	}
}

// TestM2MReplayWindowListener runs replayOrder against M2's real /m2m
// listener over UDP: refusals are 4.01 "replay" and never reach the handler.
func TestM2MReplayWindowListener(t *testing.T) {
	p := newPair(t)
	sealed := p.seal(t, 166)
	before := chtest.Snap(t, p.ch)
	var accepted int64
	for _, step := range replayOrder {
		reply, err := p.talk.SendRaw(chtest.Ctx(t), sealed[step.seq])
		if step.ok {
			accepted++
			if want := fmt.Sprintf("ack message %d", step.seq); err != nil || string(reply) != want {
				t.Fatalf("seq %d (%s): %q, %v", step.seq, step.note, reply, err)
			}
			continue
		}
		var ce *device.CodeError
		if !errors.As(err, &ce) || ce.Code != codes.Unauthorized || ce.Diagnostic != "replay" {
			t.Fatalf("seq %d (%s): got %v, want 4.01 replay", step.seq, step.note, err)
		}
	}
	if n := p.handled.Load(); n != accepted {
		t.Fatalf("handler saw %d messages, %d were accepted", n, accepted)
	}
	chtest.Unchanged(t, p.ch, before)
}

// TestBitFlippedTicket: a hostile M2 answers /talk with M1's genuine
// ticket, one bit flipped in one byte of the answer at a time; M1 refuses
// every copy and accepts the untouched answer.
func TestBitFlippedTicket(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	m1 := chtest.Joined(t, ch, "m1")
	m2 := chtest.Joined(t, ch, "m2")
	_, ticket, err := m2.Session(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	answer := talkResponse(t, "m2", ticket)
	peer := startFakePeer(t)
	before := chtest.Snap(t, ch)
	for i := range answer {
		b := bytes.Clone(answer)
		b[i] ^= 1 << (i % 8)
		peer.answer(b)
		tk, err := m1.Talk(ctx, peer.addr, "m2")
		if err == nil {
			tk.Close()
			t.Fatalf("byte %d (%#02x → %#02x) of the /talk answer: M1 accepted the ticket", i, answer[i], b[i])
		}
		if !errors.Is(err, device.ErrBadResponse) {
			t.Fatalf("byte %d: %v, want ErrBadResponse", i, err)
		}
	}
	chtest.Unchanged(t, ch, before)
	peer.answer(answer)
	tk, err := m1.Talk(ctx, peer.addr, "m2")
	if err != nil {
		t.Fatalf("control: the untouched answer: %v", err)
	}
	tk.Close()
}

// TestBitFlippedM2M flips one bit in every byte of a sealed M2M message and
// delivers each copy to M2's listener and to M2's side of a Session: every
// copy is refused (4.00 or 4.01), the handler never runs, and the original is
// accepted afterwards.
func TestBitFlippedM2M(t *testing.T) {
	p := newPair(t)
	msg := p.seal(t, 1)[0]
	before := chtest.Snap(t, p.ch)
	seen := map[string]int{}
	for i := range msg {
		b := bytes.Clone(msg)
		b[i] ^= 1 << (i % 8)
		_, err := p.talk.SendRaw(chtest.Ctx(t), b)
		var ce *device.CodeError
		if !errors.As(err, &ce) || ce.Code>>5 != 4 {
			t.Fatalf("byte %d (%#02x → %#02x): got %v, want a 4.xx", i, msg[i], b[i], err)
		}
		seen[ce.Error()]++
	}
	if n := p.handled.Load(); n != 0 {
		t.Fatalf("handler ran %d times for flipped messages", n)
	}
	chtest.Unchanged(t, p.ch, before)
	t.Logf("%d flipped messages: %v", len(msg), seen)
	if reply, err := p.talk.SendRaw(chtest.Ctx(t), msg); err != nil || string(reply) != "ack message 0" {
		t.Fatalf("control: the original: %q, %v", reply, err)
	}
}

// TestForeignM2MSession: a member that holds no ticket for a session cannot
// speak in it: a message under the session ID with a made-up Sk, or under a
// session the listener never granted, is refused 4.01.
func TestForeignM2MSession(t *testing.T) {
	p := newPair(t)
	m3 := chtest.Joined(t, p.ch, "m3")
	// M3 has its own genuine session with M2 … and tries its keys in M1's.
	_, t3, err := p.m2.Session(chtest.Ctx(t), "m3")
	if err != nil {
		t.Fatal(err)
	}
	s3, err := m3.OpenTicket(t3, "m2", "m3", "m2")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := protect.DeriveM2M([wire.KeySize]byte{1, 2, 3}, p.talk.Session.SID, "m3", "m2")
	forged, err := protect.SealM2M(keys, p.talk.Session.SID, "m3", "m2", 0, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	impersonation, err := protect.SealM2M(keys, p.talk.Session.SID, "m1", "m2", 0, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := s3.Seal([]byte("never granted to this listener")) // M2's listener did not ask for s3
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"M3 in M1's session": forged, "M3 as M1": impersonation, "session the listener never granted": unknown} {
		t.Run(name, func(t *testing.T) {
			_, err := p.talk.SendRaw(chtest.Ctx(t), b)
			var ce *device.CodeError
			if !errors.As(err, &ce) || ce.Code != codes.Unauthorized {
				t.Fatalf("got %v, want 4.01", err)
			}
		})
	}
	if n := p.handled.Load(); n != 0 {
		t.Fatalf("handler ran %d times", n)
	}
}

// TestListenerRateLimited: a device listener runs on the CH's CoAP edge and
// has its per-source limit: a flood of hellos from one source — each with a
// well-formed, fresh proof for the listener's device, the kind the listener
// forwards to its CH — is answered 4.29 beyond the burst, so it cannot make
// the listener call its CH for each.
func TestListenerRateLimited(t *testing.T) {
	const rate = 2 // per second: a burst of 5, so the test does not depend on the machine's speed
	ch := chtest.Start(t, "")
	m2 := chtest.Joined(t, ch, "m2")
	l, err := m2.Listen("127.0.0.1:0", func(string, []byte) []byte { return nil }, nil, device.WithListenRateLimit(rate))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := udp.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hello := func() []byte {
		return mustCBOR(t, map[int]any{1: "nobody", 2: "m2", 3: []any{randomBytes(t, 12), uint64(time.Now().Unix()), randomBytes(t, 16)}})
	}
	// The hellos carry the Echo that verified this source's address, so
	// each one within the limit is served: the listener asks its CH, which
	// refuses the made-up proof.
	challenge, err := conn.Post(chtest.Ctx(t), "/talk", message.AppCBOR, bytes.NewReader(hello()))
	if err != nil {
		t.Fatal(err)
	}
	echo, err := challenge.Echo()
	if err != nil {
		t.Fatalf("first hello: %v, want 4.01 with an Echo", challenge.Code())
	}
	codesSeen := map[codes.Code]int{}
	start := time.Now()
	for range 30 {
		resp, err := conn.Post(chtest.Ctx(t), "/talk", message.AppCBOR, bytes.NewReader(hello()), message.Option{ID: message.Echo, Value: echo})
		if err != nil {
			t.Fatal(err)
		}
		codesSeen[resp.Code()]++
	}
	// A token bucket of burst 2r+1 refilled at r per second.
	bound := 2*rate + 1 + int(time.Since(start).Seconds()*rate) + 1
	if served := 30 - codesSeen[codes.TooManyRequests]; codesSeen[codes.TooManyRequests] == 0 || served > bound ||
		served != codesSeen[codes.Unauthorized] {
		t.Fatalf("answers %v: want at most %d hellos served (4.01: the CH refused the proof), the rest refused 4.29", codesSeen, bound)
	}
}

// TestSpoofedHelloDrawsOnlyTheChallenge: a hello from a source whose address
// no Echo verified — all a spoofed one is — naming a real member draws a
// 4.01 with an Echo, at most three times its size, and nothing else: the
// listener asks its CH nothing (no verdict, no session granted, the ledger
// unchanged). Before, the spoofed source got the member's ticket (×4 its
// hello) and the CH recorded a session.
func TestSpoofedHelloDrawsOnlyTheChallenge(t *testing.T) {
	ch := chtest.Start(t, "")
	chtest.Joined(t, ch, "m1")
	m2 := chtest.Joined(t, ch, "m2")
	l, err := m2.Listen("127.0.0.1:0", func(string, []byte) []byte { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := chtest.Snap(t, ch)
	hello := chtest.Request(message.NonConfirmable, codes.POST, "/talk", message.Option{ID: message.ContentFormat, Value: []byte{byte(message.AppCBOR)}})
	hello.Payload, _ = wire.Marshal(&wire.Hello{ID: "m1"})
	answer, sent, received := chtest.NewSocket(t, l.Addr().String(), "").Exchange(hello)
	if echo, _ := answer.Options.GetBytes(message.Echo); answer.Code != codes.Unauthorized || len(echo) == 0 || received > 3*sent {
		t.Fatalf("%d-byte hello answered with %d bytes: %s; want a 4.01 with an Echo, at most 3× the hello", sent, received, chtest.Describe(answer))
	}
	chtest.Unchanged(t, ch, before)
}
