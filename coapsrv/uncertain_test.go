package coapsrv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/coapsrv"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// undecidedCore is a real policy core behind a ledger that has not decided
// the first joins it gets: it answers them ErrUncertain, as the core does
// when a shared ledger without a quorum outlives the request, and records
// every join payload it sees and when.
type undecidedCore struct {
	*cluster.Core
	mu        sync.Mutex
	undecided int // joins still to answer ErrUncertain
	payloads  [][]byte
	at        []time.Time
}

func (c *undecidedCore) Join(ctx context.Context, payload []byte, addr string) (cluster.JoinResult, error) {
	c.mu.Lock()
	c.payloads = append(c.payloads, bytes.Clone(payload))
	c.at = append(c.at, time.Now())
	undecided := c.undecided > 0
	c.undecided--
	c.mu.Unlock()
	if undecided {
		return cluster.JoinResult{}, fmt.Errorf("failed to record join: %w", ledger.ErrUncertain)
	}
	return c.Core.Join(ctx, payload, addr)
}

func (c *undecidedCore) seen() ([][]byte, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.payloads, c.at
}

// joinNonce returns the device nonce of a signed join.
func joinNonce(t *testing.T, b []byte) []byte {
	t.Helper()
	s, err := wire.ParseSign1(b)
	if err != nil {
		t.Fatal(err)
	}
	var req wire.JoinRequest
	if err := wire.Decode(s.Payload, &req); err != nil {
		t.Fatal(err)
	}
	return req.Nonce
}

// dialDevice returns a new in-memory device id dialled to srv.
func dialDevice(t *testing.T, srv *coapsrv.Server, id string) (*device.State, *device.Device) {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.Dial(srv.Addr().String(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return st, d
}

// TestUncertainJoinAnswer: "outcome not known yet" is 5.03 with its
// diagnostic and a Max-Age option, not 5.00, and not reported as an
// internal failure.
func TestUncertainJoinAnswer(t *testing.T) {
	ch := chtest.Start(t, "")
	core := &undecidedCore{Core: ch.Core, undecided: 1}
	var reported []error
	var mu sync.Mutex
	srv, err := coapsrv.Listen("127.0.0.1:0", core,
		coapsrv.WithErrors(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := udp.Dial(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := conn.Post(chtest.Ctx(t), "/join", message.AppCoseSign1, bytes.NewReader([]byte{0x80}))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := resp.ReadBody()
	age, ageErr := resp.GetOptionUint32(message.MaxAge)
	if resp.Code() != codes.ServiceUnavailable || string(body) != "outcome not known yet" || ageErr != nil || age != coapsrv.UncertainMaxAge {
		t.Fatalf("undecided join: %v %q Max-Age %d (%v), want 5.03 outcome not known yet, Max-Age %d",
			resp.Code(), body, age, ageErr, coapsrv.UncertainMaxAge)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 0 {
		t.Fatalf("an undecided join was reported as a failure: %v", reported)
	}
}

// TestDeviceResendsSameJoin: a device answered 5.03 resends the very same
// signed join (same bytes) after Max-Age and takes the recorded answer; one
// that runs out of time keeps the join pending (ErrOutcomeUnknown), and its
// next Join sends the same nonce again instead of a new join.
func TestDeviceResendsSameJoin(t *testing.T) {
	ch := chtest.Start(t, "")
	core := &undecidedCore{Core: ch.Core, undecided: 1}
	srv, err := coapsrv.Listen("127.0.0.1:0", core)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	st, d := dialDevice(t, srv, "sensor-a")
	chtest.Enroll(t, ch, st)
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join answered 5.03 once: %v", err)
	}
	payloads, at := core.seen()
	if len(payloads) != 2 || !bytes.Equal(payloads[0], payloads[1]) {
		t.Fatalf("%d join payloads, want the same signed join twice", len(payloads))
	}
	if gap := at[1].Sub(at[0]); gap < coapsrv.UncertainMaxAge*time.Second-50*time.Millisecond {
		t.Fatalf("the device resent after %v, before Max-Age (%d s)", gap, coapsrv.UncertainMaxAge)
	}
	if st.PendingJoin != nil {
		t.Fatalf("a decided join left %+v pending", st.PendingJoin)
	}

	// A device whose time runs out while the ledger decides keeps its join
	// pending, and sends the same nonce on its next join.
	st2, d2 := dialDevice(t, srv, "sensor-b")
	chtest.Enroll(t, ch, st2)
	core.mu.Lock()
	core.undecided, core.payloads, core.at = 1, nil, nil
	core.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // shorter than Max-Age
	defer cancel()
	if _, err := d2.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); !errors.Is(err, device.ErrOutcomeUnknown) {
		t.Fatalf("join that stayed undecided: %v, want ErrOutcomeUnknown", err)
	}
	if st2.PendingJoin == nil {
		t.Fatal("an undecided join is not kept pending")
	}
	if _, err := d2.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join again: %v", err)
	}
	payloads, _ = core.seen()
	if len(payloads) != 2 || !bytes.Equal(joinNonce(t, payloads[0]), joinNonce(t, payloads[1])) {
		t.Fatalf("%d join payloads; the second join must carry the undecided one's nonce", len(payloads))
	}
	if m := d2.Membership(); m == nil || !bytes.Equal(m.DeviceNonce, joinNonce(t, payloads[0])) || st2.PendingJoin != nil {
		t.Fatalf("membership %+v, pending %+v", m, st2.PendingJoin)
	}
}
