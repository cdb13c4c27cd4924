package device_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// talkReplayer is an on-path attacker between an initiator and a listener:
// it relays datagrams both ways, keeps the first talk answer (2.05) the
// listener sends, and, once armed, puts that answer's body in place of every
// later one.
type talkReplayer struct {
	*onPath
	mu    sync.Mutex
	kept  []byte
	armed bool
}

func startTalkReplayer(t *testing.T, target string) *talkReplayer {
	t.Helper()
	p := &talkReplayer{}
	p.onPath = startOnPath(t, target, func(_ *onPath, toServer bool, b []byte, m *message.Message) []byte {
		if toServer || m == nil || m.Code != codes.Content {
			return b
		}
		if cf, err := m.Options.ContentFormat(); err != nil || cf != message.AppCBOR {
			return b
		}
		return p.swap(t, m, b)
	})
	return p
}

// swap keeps the first talk answer m (encoded as b) and returns b, or, once
// armed, m with the kept answer's body.
func (p *talkReplayer) swap(t *testing.T, m *message.Message, b []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kept == nil {
		p.kept = bytes.Clone(m.Payload)
	}
	if !p.armed {
		return b
	}
	m.Payload = p.kept
	out := make([]byte, 2048)
	n, err := coder.DefaultCoder.Encode(*m, out)
	if err != nil {
		t.Error(err)
		return b
	}
	return out[:n]
}

func (p *talkReplayer) arm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = true
}

// replayScene is M1 (its device file at path) after a talk with M2's
// listener l through an on-path replayer, which keeps M2's answer.
type replayScene struct {
	ch    *clusterhead.CH
	path  string
	l     *device.Listener
	proxy *talkReplayer
	m1    *device.Device
	first *device.Talk
}

func newReplayScene(t *testing.T) *replayScene {
	t.Helper()
	r := &replayScene{ch: chtest.Start(t, "", chtest.Open), path: newFile(t, "m1")}
	if err := joinNear(t, r.ch, r.path); err != nil {
		t.Fatal(err)
	}
	m2 := chtest.Joined(t, r.ch, "m2")
	var err error
	r.l, err = m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.l.Close() })
	r.proxy = startTalkReplayer(t, r.l.Addr().String())
	r.m1 = dialFile(t, r.ch, r.path)
	if r.first, err = r.m1.Talk(chtest.Ctx(t), r.proxy.addr(), "m2"); err != nil {
		t.Fatalf("genuine talk: %v", err)
	}
	return r
}

// TestReplayedTalkAnswer: an on-path attacker that kept the listener's
// answer to a talk (M1's ticket, sealed by the CH, valid for 10 minutes) and
// puts it in place of the answer to M1's next talk with the same peer must
// not make M1 start the same session again: its M2M keys and sequence
// numbers would start from 0 again, so M1 would seal new messages under
// the key and nonces of the old ones (AES-GCM: their XOR, and forgeries).
// M1 refuses a ticket it used before — also from its device file, in the
// next process (`iotguard device send` talks once per run).
func TestReplayedTalkAnswer(t *testing.T) {
	ctx := chtest.Ctx(t)
	r := newReplayScene(t)
	ch, path, l, proxy, m1, first := r.ch, r.path, r.l, r.proxy, r.m1, r.first
	defer first.Close()
	if reply, err := first.Send(ctx, []byte("first")); err != nil || string(reply) != "first" {
		t.Fatalf("first message: %q, %v", reply, err)
	}

	proxy.arm()
	for _, tc := range []struct {
		name string
		d    *device.Device
	}{{"same process", m1}, {"next process", dialFile(t, ch, path)}} {
		name := tc.name
		again, err := tc.d.Talk(ctx, proxy.addr(), "m2")
		if err == nil {
			again.Close()
			if bytes.Equal(again.Session.SID, first.Session.SID) {
				t.Fatalf("%s: the replayed talk answer started session %x again: M1's M2M nonces would repeat", name, first.Session.SID)
			}
			t.Fatalf("%s: talk through the replaying proxy: session %x, want a refusal", name, again.Session.SID)
		}
		if !errors.Is(err, device.ErrBadResponse) {
			t.Errorf("%s: replayed talk answer: %v, want ErrBadResponse", name, err)
		}
	}
	// The session it first opened works, and a talk that is not tampered with too.
	if reply, err := first.Send(ctx, []byte("still")); err != nil || string(reply) != "still" {
		t.Fatalf("the first session: %q, %v", reply, err)
	}
	next, err := m1.Talk(ctx, l.Addr().String(), "m2")
	if err != nil {
		t.Fatalf("talk without the attacker: %v", err)
	}
	next.Close()
}

// spentTickets returns what the device file at path remembers of the
// tickets it used.
func spentTickets(t *testing.T, path string) device.SpentTickets {
	t.Helper()
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.SpentTickets
}

// TestJoinForgetsSpentTickets: a join gives a new member key, under which
// no ticket sealed before opens, so the device forgets the tickets it used
// (its file's memory empty, the floor too); the answer a replayer kept from
// before the join is still refused, as a ticket that does not open. Before,
// the memory was kept across joins (the C device's 5 entries refused new
// talks for up to 10 minutes after a rejoin).
func TestJoinForgetsSpentTickets(t *testing.T) {
	ctx := chtest.Ctx(t)
	r := newReplayScene(t)
	path, l, proxy, m1, first := r.path, r.l, r.proxy, r.m1, r.first
	first.Close()
	s := spentTickets(t, path)
	if len(s.SIDs) != 1 {
		t.Fatalf("after a talk the file remembers %d tickets, want 1", len(s.SIDs))
	}
	old, err := m1.MemberKeys()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	if s := spentTickets(t, path); len(s.SIDs) != 0 || s.Floor != 0 {
		t.Fatalf("after a join the file remembers tickets %+v, want none (no earlier ticket opens)", s)
	}
	// A ticket opened under the old key before the join and spent after it
	// (a Talk running meanwhile) is refused: the join forgot that key's.
	if err := m1.SpendTicket(first.Session.SID, s.SIDs[0].Expires, old); !errors.Is(err, device.ErrBadResponse) {
		t.Fatalf("a ticket opened under the member key before the join, spent after it: %v, want ErrBadResponse", err)
	}

	proxy.arm()
	again, err := m1.Talk(ctx, proxy.addr(), "m2")
	if err == nil {
		again.Close()
		t.Fatalf("the answer kept from before the join started session %x", again.Session.SID)
	}
	if !errors.Is(err, device.ErrBadResponse) || !strings.Contains(err.Error(), "ticket: ") {
		t.Fatalf("the answer kept from before the join: %v, want a ticket that does not open", err)
	}
	next, err := m1.Talk(ctx, l.Addr().String(), "m2")
	if err != nil {
		t.Fatalf("talk after the join: %v", err)
	}
	next.Close()
	if s := spentTickets(t, path); len(s.SIDs) != 1 || !bytes.Equal(s.SIDs[0].SID, next.Session.SID) {
		t.Fatalf("after the join's first talk the file remembers %+v, want its ticket only", s)
	}
}

// TestPendingJoinAnsweredTwice: two processes of a device send the same
// pending join; the CH answers both with the one join it recorded, the
// same member key. The one answered second must keep what the first used
// under it since, its sequence numbers and its tickets: before, it saved
// its own (0, none), and its next request reused the first one's numbers
// (refused "replay" by the CH: AES-GCM nonces used twice under the request
// key), and a ticket the first used could start its session again.
func TestPendingJoinAnsweredTwice(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	path := newFile(t, "m1")
	a, forger := dialThroughForger(t, ch, path)
	forger.arm(textAnswer(t, codes.Conflict, "id bound to another key", false))
	if _, err := a.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err == nil {
		t.Fatal("join answered with a forged 4.09: no error")
	}
	forger.relayed(t, ctx) // recorded by the CH; the nonce is pending in the file

	b := dialFile(t, ch, path) // a second process: the same pending join
	if _, err := b.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("the second process's join: %v", err)
	}
	m2 := chtest.Joined(t, ch, "m2")
	l, err := m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	talk, err := b.Talk(ctx, l.Addr().String(), "m2")
	if err != nil {
		t.Fatalf("talk: %v", err)
	}
	talk.Close()
	for range 3 {
		if _, err := b.Verify(ctx, "m2"); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}

	if _, err := a.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("the first process's join again: %v", err)
	}
	if got := a.Seq(); got != b.Seq() {
		t.Fatalf("after the same join's answer the first process's next number is %d, the second used up to %d", got, b.Seq()-1)
	}
	if s := spentTickets(t, path); len(s.SIDs) != 1 || !bytes.Equal(s.SIDs[0].SID, talk.Session.SID) {
		t.Fatalf("after the same join's answer the file remembers tickets %+v, want the second process's", s)
	}
	if _, err := a.Verify(ctx, "m2"); err != nil {
		t.Fatalf("verify after the same join's answer: %v", err)
	}
}
