package device_test

import (
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
)

// echoForger is an on-path attacker between a device and its CH: it relays
// datagrams both ways, and, once armed, answers the device's next POST
// itself with a text 4.01 "echo required" and an Echo option of its own,
// as the CH answers a member's first request after a restart, while it still
// relays that POST to the CH and drops the CH's own answer.
type echoForger struct {
	conn    net.PacketConn
	mu      sync.Mutex
	armed   bool
	dropMID int32         // the message ID of the CH's answer to drop; -1: none
	dropped chan struct{} // closed when that answer came, and was dropped
}

func startEchoForger(t *testing.T, ch *clusterhead.CH) *echoForger {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", ch.Addr())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &echoForger{conn: pc, dropMID: -1, dropped: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var device net.Addr
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			m := message.Message{Options: make(message.Options, 0, 16)}
			_, derr := coder.DefaultCoder.Decode(buf[:n], &m)
			if from.String() == to.String() {
				f.mu.Lock()
				drop := derr == nil && int32(m.MessageID) == f.dropMID
				if drop {
					f.dropMID = -1
					close(f.dropped)
				}
				f.mu.Unlock()
				if device != nil && !drop {
					_, _ = pc.WriteTo(buf[:n], device)
				}
				continue
			}
			device = from
			_, _ = pc.WriteTo(buf[:n], to)
			f.mu.Lock()
			forge := f.armed && derr == nil && m.Code == codes.POST
			if forge {
				f.armed, f.dropMID = false, int32(m.MessageID)
			}
			f.mu.Unlock()
			if forge {
				_, _ = pc.WriteTo(forgedChallenge(t, &m), device)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return f
}

// forgedChallenge is the answer to req a CH makes to a member's first
// request after its restart, in text: 4.01 "echo required" with an Echo.
func forgedChallenge(t *testing.T, req *message.Message) []byte {
	t.Helper()
	typ := message.NonConfirmable
	if req.Type == message.Confirmable {
		typ = message.Acknowledgement
	}
	echo := make([]byte, 20)
	var buf [4]byte
	n, err := message.EncodeUint32(buf[:], uint32(message.TextPlain))
	if err != nil {
		t.Error(err)
	}
	m := message.Message{
		Type: typ, MessageID: req.MessageID, Token: req.Token, Code: codes.Unauthorized,
		Options: message.Options{{ID: message.ContentFormat, Value: buf[:n]}, {ID: message.Echo, Value: echo}},
		Payload: []byte("echo required"),
	}
	b := make([]byte, 256)
	n, err = coder.DefaultCoder.Encode(m, b)
	if err != nil {
		t.Error(err)
	}
	return b[:n]
}

func (f *echoForger) arm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = true
}

func (f *echoForger) addr() string { return f.conn.LocalAddr().String() }

// TestForgedEchoChallengeNotFollowed: an on-path attacker that answers a
// member's /session with a forged 4.01 + Echo — the CH's challenge after a
// restart, which the CH seals (PROTOCOL.md §4.1) — while the request reaches
// the CH, must not make the device send the request again: the CH would
// grant a second session and record it, one grant record per forged
// datagram. The device follows only a sealed challenge that opens as the
// refusal of its request; the forged one is an error, and the CH recorded
// the one grant it made.
func TestForgedEchoChallengeNotFollowed(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	chtest.Joined(t, ch, "m1")
	st, err := device.NewState("m2")
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, ch, st)
	forger := startEchoForger(t, ch)
	m2, err := device.Dial(forger.addr(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if _, err := m2.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	// The CH's own challenge, if it has one for this member, is met first.
	if _, err := m2.Verify(ctx, "m1"); err != nil {
		t.Fatal(err)
	}

	before := chtest.Snap(t, ch)
	forger.arm()
	_, _, err = m2.Session(ctx, "m1")
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Unauthorized || ce.Sealed {
		t.Errorf("session answered with a forged echo challenge: %v, want an unsealed 4.01", err)
	}
	select { // the CH served the request the attacker let through
	case <-forger.dropped:
	case <-ctx.Done():
		t.Fatal("the CH did not answer the relayed request")
	}
	sessions := 0
	for _, ev := range chtest.AuditSince(t, ch, before) {
		if ev.Type == ledger.EventSession {
			sessions++
		}
	}
	if sessions != 1 {
		t.Errorf("the CH recorded %d sessions for one Session call and one forged datagram, want 1", sessions)
	}
	// The device still works.
	if _, _, err := m2.Session(ctx, "m1"); err != nil {
		t.Errorf("next session: %v", err)
	}
}
