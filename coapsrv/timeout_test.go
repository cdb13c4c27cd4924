package coapsrv_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/iotguard/iotguard/wire"
)

// stuckCore is a real policy core whose Join and Leave hang until their
// context ends, as they would behind a ledger that stopped committing (a
// full or dead disk). Everything else is the real core's.
type stuckCore struct {
	*cluster.Core
	entered chan struct{} // one value per request that reached the core
}

func (c *stuckCore) Join(ctx context.Context, _ []byte, _ string) (cluster.JoinResult, error) {
	c.entered <- struct{}{}
	<-ctx.Done()
	return cluster.JoinResult{}, ctx.Err()
}

func (c *stuckCore) Leave(ctx context.Context, _ []byte, _ string) ([]byte, error) {
	c.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestRequestTimeout: a request whose handling hangs is cut off by the
// server's per-request timeout and answered 5.00 "internal error" (the
// failure goes to the error hook, not to the client), and while it hangs the
// server keeps answering other clients.
func TestRequestTimeout(t *testing.T) {
	ch := chtest.Start(t, "")
	core := &stuckCore{Core: ch.Core, entered: make(chan struct{}, 4)}
	var mu sync.Mutex
	var reported []error
	srv, err := coapsrv.Listen("127.0.0.1:0", core,
		func(c *coapsrv.Config) { c.Timeout = 300 * time.Millisecond },
		coapsrv.WithErrors(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	for _, req := range []struct {
		path string
		cf   message.MediaType
	}{{"/join", message.AppCoseSign1}, {"/leave", message.AppCoseEncrypt0}} {
		t.Run(req.path, func(t *testing.T) {
			stuck, err := udp.Dial(srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer stuck.Close()
			other, err := udp.Dial(srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()

			type result struct {
				code codes.Code
				diag string
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := stuck.Post(chtest.Ctx(t), req.path, req.cf, bytes.NewReader([]byte{0x80}))
				if err != nil {
					done <- result{err: err}
					return
				}
				body, _ := resp.ReadBody()
				done <- result{code: resp.Code(), diag: string(body)}
			}()
			select {
			case <-core.entered:
			case <-time.After(chtest.Timeout):
				t.Fatal("the request never reached the core")
			}
			// While that request hangs, another client is served.
			if r := chtest.Get(t, other, "/cluster"); r.Code != codes.Content {
				t.Fatalf("GET /cluster while a request hangs: %v", r.Code)
			}
			r := <-done // bounded: chtest.Ctx
			if r.err != nil || r.code != codes.InternalServerError || r.diag != "internal error" {
				t.Fatalf("hung request: %v %q %v, want 5.00 internal error", r.code, r.diag, r.err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	var deadlines int
	for _, err := range reported {
		if errors.Is(err, context.DeadlineExceeded) {
			deadlines++
		}
	}
	if deadlines != 2 {
		t.Fatalf("error hook got %d deadline errors (of %v), want 2", deadlines, reported)
	}
}

// TestExpiredContextWritesNothing: the real core, given a valid, fresh,
// signed join whose deadline has already passed (the server's timeout struck
// before the ledger took it), refuses it with the context's error and writes
// nothing; the same join with time left is recorded (the control).
func TestExpiredContextWritesNothing(t *testing.T) {
	ch := chtest.Start(t, "")
	st, err := device.NewState("sensor-late")
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, ch, st)
	key, err := wire.EncodePublicKey(&st.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.0.1:40000"
	req := wire.JoinRequest{Cluster: chtest.Cluster, ID: st.ID, Key: key, Lat: chtest.Near.Lat, Lon: chtest.Near.Lon,
		Nonce: bytes.Repeat([]byte{7}, wire.NonceLen), Echo: ch.Core.Echo(addr)}
	payload, err := wire.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	join, err := wire.Sign1(st.Key, []byte(st.ID), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, ch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ch.Core.Join(ctx, join, addr); !errors.Is(err, context.Canceled) {
		t.Fatalf("join with a cancelled context: %v, want context.Canceled", err)
	}
	chtest.Unchanged(t, ch, before)
	if res, err := ch.Core.Join(chtest.Ctx(t), join, addr); err != nil || !res.Created {
		t.Fatalf("control: the same join in time: %+v %v", res, err)
	}
}
