// Package logtest keeps what a slog.Logger writes, for tests that check
// what is logged and at which level.
package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Records is a slog.Handler that keeps every record. It is safe for
// concurrent use.
type Records struct {
	mu   sync.Mutex
	list []slog.Record
}

// Logger returns a Logger writing to r.
func (r *Records) Logger() *slog.Logger { return slog.New(r) }

func (r *Records) Enabled(context.Context, slog.Level) bool { return true }
func (r *Records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *Records) WithGroup(string) slog.Handler            { return r }

func (r *Records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}

// At returns the records at level, in the order they were written.
func (r *Records) At(level slog.Level) []slog.Record {
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
