package coapedge_test

import (
	"context"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// BenchmarkAssociation is what a new source endpoint costs the edge: one
// POST /echo per op over loopback UDP, from one socket (reused) or from a
// new socket every op (fresh: go-coap makes a connection, a goroutine and
// a response cache for it, and keeps them for 16 s of inactivity). It
// reports the CPU time per op of this process (the edge, go-coap and the
// client together, including the client's socket for fresh) and, for
// fresh, the heap and goroutine stack the associations hold once made.
func BenchmarkAssociation(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		b.Run(map[bool]string{false: "reused", true: "fresh"}[fresh], func(b *testing.B) {
			srv, err := coapedge.Listen("127.0.0.1:0", []coapedge.Resource{{Path: "/echo", Method: codes.POST, Format: message.AppCBOR,
				Handle: func(_ context.Context, r *coapedge.Request) coapedge.Response {
					return coapedge.Response{Code: codes.Content, Format: message.AppCBOR, Body: r.Body, Authenticated: true}
				}}}, coapedge.WithMaxAssociations(0), coapedge.WithAssociationRate(0), coapedge.WithRateLimit(0))
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			raddr := srv.Addr().(*net.UDPAddr)
			var c *net.UDPConn
			dial := func() {
				if c != nil {
					c.Close()
				}
				if c, err = net.DialUDP("udp", nil, raddr); err != nil {
					b.Fatal(err)
				}
			}
			dial()
			defer func() { c.Close() }()
			m := chtest.Request(message.Confirmable, codes.POST, "/echo", message.Option{ID: message.ContentFormat, Value: []byte{byte(message.AppCBOR)}})
			m.Payload = []byte{0x45, 'h', 'e', 'l', 'l', 'o'}
			buf := make([]byte, 256)
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			cpu := processCPU()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if fresh {
					dial()
				}
				m.MessageID = int32(uint16(i))
				if _, err := c.Write(chtest.Datagram(b, m)); err != nil {
					b.Fatal(err)
				}
				if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
			if fresh {
				var after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(b.N), "heap-B/assoc")
				b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/float64(b.N), "stack-B/assoc")
			}
		})
	}
}

// processCPU is this process's CPU time (user + system) so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
