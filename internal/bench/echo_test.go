package bench

import (
	"errors"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/udp"
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
	conn, err := udp.Dial(srv.Addr())
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
	if _, err := ServeEcho("192.0.2.1:5700"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("ServeEcho off loopback: %v", err)
	}
}
