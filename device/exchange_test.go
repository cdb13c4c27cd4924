package device

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/coapedge"
)

// TestExchangeVerifiedReplacesItsEcho: a public GET that carries an Echo the
// server does not take (stale, or from before a restart), padded or not,
// draws the 4.01 challenge once, and the repeat carries the challenge's Echo
// in its place — not beside it, where the server would read the first one
// and challenge again — and is answered. (The answer is too large for a
// padded request: the padded one is challenged after its handler ran.)
func TestExchangeVerifiedReplacesItsEcho(t *testing.T) {
	answer := bytes.Repeat([]byte{0xa5}, 500) // more than 3 × 128: a padded request is challenged too
	srv, err := coapedge.Listen("127.0.0.1:0", []coapedge.Resource{{Path: "/large", Method: codes.GET,
		Answers: []message.MediaType{message.AppOctets}, Large: true, Padded: true,
		Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Content, Format: message.AppOctets, Body: answer}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := dial(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stale := message.Option{ID: message.Echo, Value: bytes.Repeat([]byte{1}, 20)}
	for _, opts := range [][]message.Option{{stale}, {stale, padded}} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		r, err := exchangeVerified(ctx, conn, codes.GET, "/large", 0, nil, opts...)
		cancel()
		if err != nil || r.code != codes.Content || !bytes.Equal(r.body, answer) || len(r.echo) == 0 {
			t.Errorf("GET /large with a stale Echo (options %v): %v, %+v", opts, err, r)
		}
	}
}
