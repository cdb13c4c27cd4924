package clusterhead_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// logRecords is a slog.Handler that keeps every record's level, message and
// attributes.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }

func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// count returns how many records at level have message msg.
func (l *logRecords) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// last returns the last record at level.
func (l *logRecords) last(level slog.Level) (slog.Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.records) - 1; i >= 0; i-- {
		if l.records[i].Level == level {
			return l.records[i], true
		}
	}
	return slog.Record{}, false
}

// TestMalformedDatagramsNotLogged: datagrams that are not CoAP, from an
// endpoint that holds an association and from new ones, write no log line
// at Warn (they once wrote one each: 20,000 datagrams, 12,499 lines) and
// are counted in iotguard_coap_dropped_total{reason="malformed"}.
func TestMalformedDatagramsNotLogged(t *testing.T) {
	rec := &logRecords{}
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Logger = slog.New(rec)
		c.Metrics = "127.0.0.1:0"
	})
	held := chtest.NewSocket(t, ch.Addr(), "127.0.0.1:0")
	// The probe makes the association; its answer comes after every
	// datagram sent before it was read (one read loop).
	probe := func() {
		t.Helper()
		if a, _, _ := held.Exchange(chtest.Request(message.NonConfirmable, codes.POST, "/verify")); a.Code != codes.UnsupportedMediaType {
			t.Fatalf("probe: %s", chtest.Describe(a))
		}
	}
	probe()
	// NON POST with option delta 15 and a length: not CoAP.
	malformed := func(mid int) []byte { return []byte{0x50, 0x02, byte(mid >> 8), byte(mid), 0xf1, 0x00} }
	const batches, perBatch, fresh = 20, 100, 50
	for b := range batches {
		for i := range perBatch { // in batches: none lost in a full socket buffer
			held.Send(malformed(b*perBatch + i))
		}
		probe()
	}
	for i := range fresh {
		chtest.NewSocket(t, ch.Addr(), "127.0.0.1:0").Send(malformed(i))
	}
	probe()
	m := chtest.Scrape(t, ch.MetricsAddr())
	if got, want := m[fmt.Sprintf("iotguard_coap_dropped_total{reason=%q}", coapedge.DropMalformed)], batches*perBatch+fresh; got != want {
		t.Errorf("dropped as malformed: %d, want %d", got, want)
	}
	if n := rec.count(slog.LevelWarn, "request failed"); n != 0 {
		r, _ := rec.last(slog.LevelWarn)
		t.Errorf("%d Warn lines for %d malformed datagrams, want none; last: %s", n, batches*perBatch+fresh, r.Message)
	}
}
