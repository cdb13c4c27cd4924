package metrics_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iotguard/iotguard/metrics"
)

// TestServeClosesAfterResponse: the metrics endpoint closes each connection
// once it has answered, so that no client can keep connections open, idle,
// for as long as it likes (each one a file descriptor of the CH).
func TestServeClosesAfterResponse(t *testing.T) {
	srv, err := metrics.Serve("127.0.0.1:0", metrics.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: iotguard\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// A bound on the wait, not a timing: an open connection never ends.
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the connection stayed open after the answer: %v", err)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 OK")) || !bytes.Contains(resp, []byte("go_goroutines")) {
		t.Fatalf("answer: %.200q", resp)
	}
}
