package boundlog_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/boundlog"
)

// records is a slog.Handler that keeps every record.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}

// at returns the records at level.
func (r *records) at(level slog.Level) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.list {
		if rec.Level == level {
			out = append(out, rec)
		}
	}
	return out
}

// TestBounded: lines are logged at the Logger's level up to a burst, then
// one per interval, the others at Debug; the next line at the level counts
// those held back.
func TestBounded(t *testing.T) {
	rec := &records{}
	now := time.Unix(1_700_000_000, 0)
	l := boundlog.New(slog.New(rec), slog.LevelWarn, func() time.Time { return now })
	const n = 1000
	for i := range n {
		l.Log("request failed", "i", i)
	}
	warn, debug := len(rec.at(slog.LevelWarn)), len(rec.at(slog.LevelDebug))
	if warn != boundlog.Burst || debug != n-warn {
		t.Fatalf("%d lines at once: %d at Warn, %d at Debug; want %d at Warn, the rest at Debug", n, warn, debug, boundlog.Burst)
	}
	now = now.Add(boundlog.Every)
	l.Log("a fault after the flood")
	lines := rec.at(slog.LevelWarn)
	if len(lines) != warn+1 {
		t.Fatalf("a line an interval later: %d Warn lines, want %d", len(lines), warn+1)
	}
	last := lines[len(lines)-1]
	var suppressed int64
	last.Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			suppressed = a.Value.Int64()
		}
		return true
	})
	if last.Message != "a fault after the flood" || suppressed != int64(debug) {
		t.Errorf("the next Warn line is %q saying %d suppressed, want %d", last.Message, suppressed, debug)
	}
}
