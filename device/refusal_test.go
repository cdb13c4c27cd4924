package device_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// fakeCH answers every /verify with what its answer function makes of the
// request, as an on-path attacker who drops the CH's answer and sends its
// own would.
type fakeCH struct {
	mu       sync.Mutex
	answer   func(req []byte) (codes.Code, message.MediaType, []byte, []message.Option)
	requests int
	addr     string
}

func startFakeCH(t *testing.T) *fakeCH {
	t.Helper()
	f := &fakeCH{}
	router := mux.NewRouter()
	router.Handle("/verify", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		req, _ := r.ReadBody()
		f.mu.Lock()
		f.requests++
		code, format, body, opts := f.answer(req)
		f.mu.Unlock()
		_ = w.SetResponse(code, format, bytes.NewReader(body), opts...)
	}))
	conn, err := coapnet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := udp.NewServer(options.WithMux(router))
	done := make(chan struct{})
	go func() { _ = srv.Serve(conn); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	f.addr = conn.LocalAddr().String()
	return f
}

// refuse makes f answer every request 4.03 with body in format.
func (f *fakeCH) refuse(format message.MediaType, body []byte) {
	f.answerWith(func([]byte) (codes.Code, message.MediaType, []byte, []message.Option) {
		return codes.Forbidden, format, body, nil
	})
}

func (f *fakeCH) answerWith(answer func(req []byte) (codes.Code, message.MediaType, []byte, []message.Option)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
}

// seen returns the number of requests f answered.
func (f *fakeCH) seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// TestRefusalsSealed: the CH's refusal of a member's protected request is
// sealed for that request (PROTOCOL.md §4.1), and the device says so
// (CodeError.Sealed); a refusal made on the path — text, garbage in
// COSE's Content-Format, or the CH's sealed refusal of another request — is
// not, so that a device never acts on it (the firmware rejoins on a sealed
// "not a member" only).
func TestRefusalsSealed(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	chtest.Joined(t, ch, "sensor-b")
	st, a := chtest.JoinedState(t, ch, "sensor-a")
	kept := *st // its membership as it was before it left
	if _, err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	kept.Seq = st.Seq
	st = &kept
	a = chtest.Dial(t, ch, st)

	// The CH's own refusal: sealed, and it opens to its diagnostic.
	before := chtest.Snap(t, ch)
	_, err := a.Verify(ctx, "sensor-b")
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Forbidden || ce.Diagnostic != "not a member: left" || !ce.Sealed {
		t.Fatalf("the CH's refusal of a left member: %#v (%v), want a sealed 4.03 not a member: left", ce, err)
	}
	chtest.Unchanged(t, ch, before)

	// A copy of it, as an attacker who kept it would send: it names another
	// request (seq), so it does not open for the next one.
	req, _, _ := sealByHand(t, st, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-b"})
	genuine := chtest.Post(t, chtest.Raw(t, ch), "/verify", message.AppCoseEncrypt0, req)
	if !genuine.Sealed {
		t.Fatalf("the CH's refusal: %v %q, not sealed", genuine.Code, genuine.Diagnostic)
	}

	forger := startFakeCH(t)
	onPath, err := device.Dial(forger.addr, st)
	if err != nil {
		t.Fatal(err)
	}
	defer onPath.Close()
	for _, tc := range []struct {
		name   string
		format message.MediaType
		body   []byte
		diag   string
	}{
		{"text", message.TextPlain, []byte("not a member: left"), "not a member: left"},
		{"garbage as COSE", message.AppCoseEncrypt0, []byte("not a member: left"), "sealed refusal does not open"},
		{"the CH's sealed refusal of another request", message.AppCoseEncrypt0, genuine.Body, "sealed refusal does not open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forger.refuse(tc.format, tc.body)
			_, err := onPath.Verify(ctx, "sensor-b")
			var ce *device.CodeError
			if !errors.As(err, &ce) || ce.Code != codes.Forbidden || ce.Diagnostic != tc.diag || ce.Sealed {
				t.Fatalf("forged refusal: %#v (%v), want an unsealed 4.03 %q", ce, err, tc.diag)
			}
		})
	}
	chtest.Unchanged(t, ch, before)
}

// TestSealedRefusalDecidesByItsDiagnostic: a sealed refusal's code and
// options are not sealed, only its diagnostic. A device follows an echo
// challenge only when the sealed diagnostic says so: the CH's sealed
// "replay" with an Echo option added on the path is a refusal, and the
// request is not sent again. Diagnostics from the network reach the CLI
// printable: a terminal's escape sequences are replaced.
func TestSealedRefusalDecidesByItsDiagnostic(t *testing.T) {
	ch := chtest.Start(t, "")
	ctx := chtest.Ctx(t)
	st, _ := chtest.JoinedState(t, ch, "sensor-a")
	keys, err := st.MemberKeys()
	if err != nil {
		t.Fatal(err)
	}
	forger := startFakeCH(t)
	forger.answerWith(func(body []byte) (codes.Code, message.MediaType, []byte, []message.Option) {
		req, err := protect.ParseRequest(body)
		if err != nil {
			t.Error(err)
			return codes.BadRequest, message.TextPlain, nil, nil
		}
		sealed, err := req.SealRefusal(keys, st.Membership.Cluster, protect.PathVerify, "replay")
		if err != nil {
			t.Error(err)
		}
		return codes.Unauthorized, message.AppCoseEncrypt0, sealed, []message.Option{{ID: message.Echo, Value: []byte("12345678")}}
	})
	onPath, err := device.Dial(forger.addr, st)
	if err != nil {
		t.Fatal(err)
	}
	defer onPath.Close()
	_, err = onPath.Verify(ctx, "sensor-a")
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Unauthorized || ce.Diagnostic != "replay" || !ce.Sealed {
		t.Fatalf("a sealed replay with an Echo option: %#v (%v), want the sealed 4.01 replay", ce, err)
	}
	if n := forger.seen(); n != 1 {
		t.Errorf("the request was sent %d times, want once", n)
	}

	forger.refuse(message.TextPlain, []byte("\x1b[2Jnot a member\x07"))
	_, err = onPath.Verify(ctx, "sensor-a")
	if !errors.As(err, &ce) || ce.Diagnostic != "\ufffd[2Jnot a member\ufffd" {
		t.Errorf("a diagnostic with escapes: %q, want them replaced", ce.Diagnostic)
	}
}
