package clusterhead_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
)

// logSink keeps what a CH logs, to catch recovered handler panics.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }

func (s *logSink) panics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if strings.Contains(l, "panic") {
			out = append(out, l)
		}
	}
	return out
}

// FuzzDatagram sends arbitrary datagrams to a real CH over UDP — the whole
// stack: go-coap's parser, our limits middleware (rate, size, Size1, Block1),
// the router, the resources and the core. After each one, the same source
// sends a GET /cluster, which the CH handles after the fuzzed datagram (one
// source is served in order): it must be answered (4.01 with an Echo: the
// probe does not verify its address), no handler may have
// panicked (coapsrv recovers and logs them), and the ledger is unchanged.
func FuzzDatagram(f *testing.F) {
	hdr := func(code byte, opts ...byte) []byte { // CON, token length 1, message ID 0x1234, token 0x7e
		return append([]byte{0x41, code, 0x12, 0x34, 0x7e}, opts...)
	}
	f.Add(hdr(0x01, 0xb7, 'c', 'l', 'u', 's', 't', 'e', 'r'))                                                  // GET /cluster
	f.Add(hdr(0x01, 0xb6, 'l', 'e', 'd', 'g', 'e', 'r', 0x04, 'h', 'e', 'a', 'd', 0x41, 0x00))                 // GET /ledger/head, Accept 0
	f.Add(hdr(0x02, 0xb4, 'j', 'o', 'i', 'n', 0x11, 18, 0xff, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40, 0x40)) // POST /join
	f.Add(hdr(0x02, 0xb6, 'v', 'e', 'r', 'i', 'f', 'y', 0x11, 16, 0xff, 0x83, 0x43, 0xa1, 0x01, 0x01, 0xa0, 0x40))
	f.Add(hdr(0x02, 0xb4, 'j', 'o', 'i', 'n', 0x11, 18, 0xd1, 0x02, 0x0e, 0xff, 0x00))       // Block1
	f.Add(hdr(0x02, 0xb4, 'j', 'o', 'i', 'n', 0x11, 18, 0xd2, 0x0f, 0x04, 0x00, 0xff, 0x00)) // Size1
	f.Add([]byte{0x40, 0x00, 0x12, 0x34})                                                    // CoAP ping
	f.Add([]byte("garbage"))

	logs := &logSink{}
	ch := chtest.Start(f, "", func(c *clusterhead.Config) { c.Logger = slog.New(logs) })
	before := chtest.Snap(f, ch)
	conn, err := net.Dial("udp", ch.Addr())
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	var mid uint16
	f.Fuzz(func(t *testing.T, datagram []byte) {
		if _, err := conn.Write(datagram); err != nil {
			t.Fatal(err)
		}
		// The probe: GET /cluster with a fresh message ID and token.
		mid++
		probe := []byte{0x42, 0x01, byte(mid >> 8), byte(mid), 0xee, byte(mid), 0xb7, 'c', 'l', 'u', 's', 't', 'e', 'r'}
		if _, err := conn.Write(probe); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		deadline := time.Now().Add(chtest.Timeout)
		for {
			if err := conn.SetReadDeadline(deadline); err != nil {
				t.Fatal(err)
			}
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no answer to the probe after %x: %v", datagram, err)
			}
			m := message.Message{Options: make(message.Options, 0, 16)}
			if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
				t.Fatalf("the CH sent a datagram that is not CoAP: %x", buf[:n])
			}
			if m.MessageID == int32(mid) {
				// Another token under the probe's message ID is go-coap's
				// deduplication (RFC 7252 §4.5) answering from its cache: an
				// earlier fuzzed datagram used this ID. Alive all the same.
				if echo, _ := m.Options.GetBytes(message.Echo); bytes.Equal(m.Token, probe[4:6]) && (m.Code.String() != "Unauthorized" || len(echo) == 0) {
					t.Fatalf("probe after %x answered %v", datagram, m.Code)
				}
				break
			}
			// An answer to the fuzzed datagram (or an older one): read on.
		}
		if p := logs.panics(); len(p) != 0 {
			t.Fatalf("handler panic after %x: %v", datagram, p)
		}
		chtest.Unchanged(t, ch, before)
	})
}
