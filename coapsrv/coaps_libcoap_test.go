package coapsrv_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// TestLibcoapCoaps drives the CH's coaps listener with libcoap's clients
// over DTLS (OpenSSL and GnuTLS builds): a member verifies a peer, gets a
// session and leaves, with nothing but its PSK identity and key; a wrong key
// and an unknown identity get no answer, and write nothing.
func TestLibcoapCoaps(t *testing.T) {
	for _, name := range []string{"coap-client-openssl", "coap-client-gnutls"} {
		t.Run(name, func(t *testing.T) {
			bin := libcoap(t, name)
			ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.DTLSListen = "127.0.0.1:0" })
			base := "coaps://" + ch.DTLSAddr()
			a := chtest.Joined(t, ch, "sensor-a")
			chtest.Joined(t, ch, "sensor-b")
			id, psk, err := a.PSK()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := func(name string, v any) string {
				f := filepath.Join(dir, name)
				if err := os.WriteFile(f, mustMarshal(t, v), 0o600); err != nil {
					t.Fatal(err)
				}
				return f
			}
			call := func(path string, body string, out wire.Validator, flags ...string) coapOut {
				t.Helper()
				got := filepath.Join(dir, "out")
				os.Remove(got)
				args := append(flags, "-m", "post", "-t", "60", "-f", body, "-o", got, base+path)
				o := coapClient(t, bin, args...)
				if out != nil {
					b, err := os.ReadFile(got)
					if err != nil {
						t.Fatalf("%s: no answer: %v (stderr %q)", path, err, o.stderr)
					}
					if err := wire.Decode(b, out); err != nil {
						t.Fatalf("%s: answer %x: %v", path, b, err)
					}
				}
				return o
			}
			member := []string{"-u", id, "-k", string(psk)}

			var v wire.VerifyResponse
			call("/verify", file("verify", &wire.VerifyRequest{Peer: "sensor-b"}), &v, member...)
			if v.Status.Membership() != membership.Member || v.Peer != "sensor-b" {
				t.Errorf("/verify: %+v", v)
			}
			var s wire.SessionResponse
			call("/session", file("session", &wire.SessionRequest{Peer: "sensor-b"}), &s, member...)
			if _, err := a.OpenTicket(s.Grant, "sensor-b", "sensor-b", "sensor-a"); err != nil {
				t.Errorf("/session grant: %v", err)
			}

			before := chtest.Snap(t, ch)
			for _, flags := range [][]string{{"-u", id, "-k", "not-the-psk"}, {"-u", "nobody", "-k", string(psk)}} {
				// libcoap logs the failed handshake (on stdout) and sends nothing.
				o := call("/verify", file("verify", &wire.VerifyRequest{Peer: "sensor-b"}), nil, flags...)
				if !regexp.MustCompile(`cannot send CoAP pdu`).MatchString(o.stdout + o.stderr) {
					t.Errorf("%v: %q %q, want a failed handshake", flags, o.stdout, o.stderr)
				}
				if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
					t.Errorf("%v: an answer was written", flags)
				}
			}
			chtest.Unchanged(t, ch, before)

			var l wire.LeaveResponse
			call("/leave", file("leave", &wire.LeaveRequest{}), &l, member...)
			if d, err := ch.Ledger.Lookup("sensor-a"); err != nil || d.Status != membership.Left || l.Height != d.Updated.Height {
				t.Errorf("after /leave: %+v %+v %v", l, d, err)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
