package coapedge_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// TestBusyAssociationDoesNotStallOthers: the edge reads every datagram on
// one loop and hands each to its association's queue. An association whose
// handler is stuck, and whose queue its source then fills, must not stop
// that loop: the datagrams it cannot queue are dropped (its source
// retransmits, as after a loss) and counted, and every other source is
// still served meanwhile. Without an Observer (a CH without metrics) the
// drop is simply not counted: it once panicked the read loop, and with it
// the process.
func TestBusyAssociationDoesNotStallOthers(t *testing.T) {
	t.Run("observed", func(t *testing.T) {
		rec := &recorder{}
		stallOne(t, coapedge.WithObserver(rec), coapedge.WithErrors(rec.error))
		if dropped, _ := rec.drops(); !slices.Contains(dropped, coapedge.DropAssociationBusy) {
			t.Errorf("dropped %v, want %q among them", dropped, coapedge.DropAssociationBusy)
		}
		if _, errs := rec.seen(); len(errs) != 0 {
			t.Errorf("errors reported for dropped datagrams: %v", errs)
		}
	})
	t.Run("no observer", func(t *testing.T) { stallOne(t) })
}

// stallOne runs an edge with opts, fills one association's queue behind a
// stuck handler, and checks that another source is still served.
func stallOne(t *testing.T, opts ...coapedge.Option) {
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	srv := serve(t, []coapedge.Resource{
		{Path: "/stuck", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-gate
			return coapedge.Response{Code: codes.Content}
		}},
		{Path: "/fast", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Content, Body: []byte("ok")}
		}},
	}, opts...)
	t.Cleanup(func() { close(gate) }) // before Close: the stuck handler returns
	busy := chtest.NewSocket(t, srv.Addr().String(), "127.0.0.1:0")
	for i := range 64 { // the first one gets stuck; the others queue behind it, then overflow
		m := chtest.Request(message.Confirmable, codes.GET, "/stuck")
		m.MessageID = int32(0x100 + i)
		busy.Send(chtest.Datagram(t, m))
		if i == 0 {
			<-entered
		}
	}
	other := dial(t, srv)
	c, cancel := context.WithTimeout(t.Context(), 5*time.Second) // liveness, not speed: a stalled loop never answers
	defer cancel()
	resp, err := other.Get(c, "/fast")
	if err != nil {
		t.Fatalf("another source was not served while one association was stuck: %v", err)
	}
	if body, _ := resp.ReadBody(); resp.Code() != codes.Content || string(body) != "ok" {
		t.Fatalf("/fast: %v %q", resp.Code(), body)
	}
}
