package device_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

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

// TestReplayedTalkAnswer: an on-path attacker that kept the listener's
// answer to a talk (M1's ticket, sealed by the CH, valid for 10 minutes) and
// puts it in place of the answer to M1's next talk with the same peer must
// not make M1 start the same session again: its M2M keys and sequence
// numbers would start from 0 again, so M1 would seal new messages under
// the key and nonces of the old ones (AES-GCM: their XOR, and forgeries).
// M1 refuses a ticket it used before — also from its device file, in the
// next process (`iotguard device send` talks once per run).
func TestReplayedTalkAnswer(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	path := newFile(t, "m1")
	if err := joinNear(t, ch, path); err != nil {
		t.Fatal(err)
	}
	m2 := chtest.Joined(t, ch, "m2")
	l, err := m2.Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	proxy := startTalkReplayer(t, l.Addr().String())

	m1 := dialFile(t, ch, path)
	first, err := m1.Talk(ctx, proxy.addr(), "m2")
	if err != nil {
		t.Fatalf("genuine talk: %v", err)
	}
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
