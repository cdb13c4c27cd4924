// Package boundlog logs lines that a client can cause at will, within a
// bound: one line each would let a client fill the operator's disk, and
// none would hide a real fault. Each Logger logs at its level up to Burst
// lines at once, then one per Every; a line held back goes to Debug, and the
// next line at the Logger's level says how many were ("suppressed"). What
// must be counted exactly is counted by a metric, not by the log.
package boundlog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Bounds of a Logger.
const (
	Burst = 10               // lines logged at once
	Every = 10 * time.Second // then one line per this long
)

// Logger logs at one level within the bound. It is safe for concurrent use.
type Logger struct {
	log   *slog.Logger
	level slog.Level
	now   func() time.Time

	mu         sync.Mutex
	lines      *rate.Limiter
	suppressed int // held back since the last line at level
}

// New returns a Logger that writes to log at level, on the clock now.
func New(log *slog.Logger, level slog.Level, now func() time.Time) *Logger {
	return &Logger{log: log, level: level, now: now, lines: rate.NewLimiter(rate.Every(Every), Burst)}
}

// Log logs msg with args at the Logger's level if within the bound, else at
// Debug.
func (l *Logger) Log(msg string, args ...any) {
	l.mu.Lock()
	if !l.lines.AllowN(l.now(), 1) {
		l.suppressed++
		l.mu.Unlock()
		l.log.Debug(msg, args...)
		return
	}
	n := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), l.level, msg, args...)
}
