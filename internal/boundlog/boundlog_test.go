package boundlog_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/boundlog"
	"github.com/iotguard/iotguard/internal/logtest"
)

// TestBounded: lines are logged at the Logger's level up to a burst, then
// one per interval, the others at Debug; the next line at the level counts
// those held back.
func TestBounded(t *testing.T) {
	rec := &logtest.Records{}
	now := time.Unix(1_700_000_000, 0)
	l := boundlog.New(rec.Logger(), slog.LevelWarn, func() time.Time { return now })
	const n = 1000
	for i := range n {
		l.Log("request failed", "i", i)
	}
	warn, debug := len(rec.At(slog.LevelWarn)), len(rec.At(slog.LevelDebug))
	if warn != boundlog.Burst || debug != n-warn {
		t.Fatalf("%d lines at once: %d at Warn, %d at Debug; want %d at Warn, the rest at Debug", n, warn, debug, boundlog.Burst)
	}
	now = now.Add(boundlog.Every)
	l.Log("a fault after the flood")
	lines := rec.At(slog.LevelWarn)
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
