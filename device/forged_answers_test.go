package device_test

import (
	"context"
	"errors"
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

// answerForger is an on-path attacker between a device and its CH: it
// relays datagrams both ways, and, once armed, answers the device's next
// POST itself with the answer forge makes of it, while it still relays that
// POST to the CH and drops the CH's own answer.
type answerForger struct {
	*onPath
	mu      sync.Mutex
	armed   func(req *message.Message) []byte // the forgery; nil: not armed
	dropMID int32                             // the message ID of the CH's answer to drop; -1: none
	dropped chan struct{}                     // closed when that answer came, and was dropped
}

func startForger(t *testing.T, ch *clusterhead.CH) *answerForger {
	t.Helper()
	f := &answerForger{dropMID: -1, dropped: make(chan struct{})}
	f.onPath = startOnPath(t, ch.Addr(), f.relay)
	return f
}

func (f *answerForger) relay(p *onPath, toServer bool, b []byte, m *message.Message) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !toServer && m != nil && int32(m.MessageID) == f.dropMID:
		f.dropMID = -1
		close(f.dropped)
		return nil
	case toServer && f.armed != nil && m != nil && m.Code == codes.POST:
		p.toClient(f.armed(m))
		f.armed, f.dropMID = nil, int32(m.MessageID)
	}
	return b
}

// textAnswer returns a forgery: the answer to a request with code, a text
// diagnostic and, if echo, an Echo option, as the CH makes them.
func textAnswer(t *testing.T, code codes.Code, diag string, echo bool) func(req *message.Message) []byte {
	return func(req *message.Message) []byte {
		typ := message.NonConfirmable
		if req.Type == message.Confirmable {
			typ = message.Acknowledgement
		}
		var buf [4]byte
		n, err := message.EncodeUint32(buf[:], uint32(message.TextPlain))
		if err != nil {
			t.Error(err)
		}
		opts := message.Options{{ID: message.ContentFormat, Value: buf[:n]}}
		if echo {
			opts = append(opts, message.Option{ID: message.Echo, Value: make([]byte, 20)})
		}
		m := message.Message{Type: typ, MessageID: req.MessageID, Token: req.Token, Code: code, Options: opts, Payload: []byte(diag)}
		b := make([]byte, 256)
		n, err = coder.DefaultCoder.Encode(m, b)
		if err != nil {
			t.Error(err)
		}
		return b[:n]
	}
}

// arm makes f answer the device's next POST with forge(request).
func (f *answerForger) arm(forge func(req *message.Message) []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = forge
}

// relayed waits until the CH answered the POST f answered itself.
func (f *answerForger) relayed(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-f.dropped:
	case <-ctx.Done():
		t.Fatal("the CH did not answer the relayed request")
	}
}

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
	forger := startForger(t, ch)
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
	forger.arm(textAnswer(t, codes.Unauthorized, "echo required", true))
	_, _, err = m2.Session(ctx, "m1")
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Unauthorized || ce.Sealed {
		t.Errorf("session answered with a forged echo challenge: %v, want an unsealed 4.01", err)
	}
	forger.relayed(t, ctx) // the CH served the request the attacker let through
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

// joinsOf returns the join events of id on ch's ledger after before.
func joinsOf(t *testing.T, ch *clusterhead.CH, before chtest.Snapshot, id string) int {
	t.Helper()
	n := 0
	err := ch.Ledger.Blocks(before.Head.Height+1, func(b ledger.Block) error {
		for _, ev := range b.Events {
			if ev.Type == ledger.EventJoin && ev.Device == id {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dialThroughForger dials the device of the file at path to ch through an
// on-path forger.
func dialThroughForger(t *testing.T, ch *clusterhead.CH, path string) (*device.Device, *answerForger) {
	t.Helper()
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	f := startForger(t, ch)
	d, err := device.Dial(f.addr(), st, device.WithStateFile(path), device.WithoutLogCheck())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, f
}

// TestForgedJoinConflictKeepsPendingJoin: an on-path attacker that lets a
// join reach the CH, drops the CH's answer (2.01: recorded) and answers the
// device with a forged text 4.09 must not make the device forget the join's
// nonce: its next join would be a new one, a second join block written for
// one forged datagram. The device keeps the nonce pending after any refusal,
// so that its next join is answered with the recorded one (2.04), and the
// CH writes nothing more.
func TestForgedJoinConflictKeepsPendingJoin(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	path := newFile(t, "m1")
	d, forger := dialThroughForger(t, ch, path)

	before := chtest.Snap(t, ch)
	forger.arm(textAnswer(t, codes.Conflict, "id bound to another key", false))
	_, err := d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Conflict {
		t.Fatalf("join answered with a forged 4.09: %v, want that 4.09", err)
	}
	forger.relayed(t, ctx)
	if n := joinsOf(t, ch, before, "m1"); n != 1 {
		t.Fatalf("the CH recorded %d joins of the relayed join, want 1", n)
	}
	if _, err := d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("the join again: %v", err)
	}
	if n := joinsOf(t, ch, before, "m1"); n != 1 {
		t.Errorf("after one forged 4.09 the device joined with a new nonce: %d joins recorded, want 1", n)
	}
}
