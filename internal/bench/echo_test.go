package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// TestEchoAnswersTheSizeAsked: the echo answers as many bytes as a request's
// first two bytes ask, up to MaxEchoAnswer; an answer of another size than
// the bench expects is an error (another server is not our echo), and so is
// a request that asks for too much or for nothing readable.
func TestEchoAnswersTheSizeAsked(t *testing.T) {
	srv, err := StartEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	checkEchoAnswers(t, srv.Addr())
	if _, err := ServeEcho("192.0.2.1:5700"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("ServeEcho off loopback: %v", err)
	}
}

// TestBareEchoAnswersLikeTheEcho: the bare echo answers the bench's
// requests as the echo does, over real UDP, and a GET with 4.05.
func TestBareEchoAnswersLikeTheEcho(t *testing.T) {
	srv, err := ServeBareEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	checkEchoAnswers(t, srv.Addr())
	conn, err := udp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := conn.Get(t.Context(), "/.well-known/core")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.MethodNotAllowed {
		t.Errorf("GET: %v, want 4.05", resp.Code())
	}
	if _, err := ServeBareEcho("192.0.2.1:5700"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("ServeBareEcho off loopback: %v", err)
	}
}

// FuzzBareAnswer: no datagram crashes the bare echo, and whatever it
// answers is an ACK with the request's message ID and token.
func FuzzBareAnswer(f *testing.F) {
	req := message.Message{Token: []byte{1, 2}, Code: codes.POST, MessageID: 7, Type: message.Confirmable, Payload: EchoRequest(71, 93)}
	seed := make([]byte, 256)
	n, err := coder.DefaultCoder.Encode(req, seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed[:n])
	f.Add([]byte{0x40, 0x01, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, datagram []byte) {
		out := make([]byte, 2048)
		answer, ok := bareAnswer(datagram, out)
		if !ok {
			return
		}
		req := message.Message{Options: make(message.Options, 0, 16)}
		resp := message.Message{Options: make(message.Options, 0, 16)}
		if _, err := coder.DefaultCoder.Decode(datagram, &req); err != nil {
			t.Fatalf("answered a datagram that does not decode: %v", err)
		}
		if _, err := coder.DefaultCoder.Decode(answer, &resp); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		if resp.Type != message.Acknowledgement || resp.MessageID != req.MessageID || !bytes.Equal(resp.Token, req.Token) {
			t.Fatalf("answer %v to %v", resp, req)
		}
	})
}

// checkEchoAnswers checks the echo at addr answers the size asked.
func checkEchoAnswers(t *testing.T, addr string) {
	t.Helper()
	conn, err := udp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, n := range []int{0, 1, 93, 314, MaxEchoAnswer} {
		if err := echoOnce(t.Context(), conn, EchoRequest(71, n), n); err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if err := echoOnce(t.Context(), conn, EchoRequest(71, 93), 94); err == nil || !strings.Contains(err.Error(), "not an iotguard bench echo") {
		t.Errorf("an answer of 93 bytes where 94 were expected: %v", err)
	}
	tooMuch := EchoRequest(71, 0)
	tooMuch[0], tooMuch[1] = 0x04, 0x01 // 1025
	for name, body := range map[string][]byte{"too much": tooMuch, "one byte": {0x00}} {
		if err := echoOnce(t.Context(), conn, body, 0); err == nil || !strings.Contains(err.Error(), "4.00") && !strings.Contains(err.Error(), "BadRequest") {
			t.Errorf("%s: %v, want a 4.00 answer", name, err)
		}
	}
}
