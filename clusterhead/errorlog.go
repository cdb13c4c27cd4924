package clusterhead

import (
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Bounds of the CoAP edge's error log (errorLog).
const (
	errorLogBurst = 10               // lines logged at once
	errorLogEvery = 10 * time.Second // then one line per this long
)

// errorLog logs the CoAP edges' errors (a handler's panic, an answer that
// could not be written, a transport error) at Warn, within a bound: the edge
// counts what a client causes at will instead of reporting it (malformed
// datagrams, full queues, failed handshakes), but a client may still cause
// some errors, and one line each would let it fill the disk. Up to
// errorLogBurst lines are logged at once, then one per errorLogEvery; one
// held back goes to Debug, and the next Warn line says how many were
// ("suppressed"), so that a real fault stays visible.
type errorLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	lines      *rate.Limiter
	suppressed int // held back since the last Warn line
}

func newErrorLog(log *slog.Logger, now func() time.Time) *errorLog {
	return &errorLog{log: log, now: now, lines: rate.NewLimiter(rate.Every(errorLogEvery), errorLogBurst)}
}

// report logs err, at Warn if within the bound, else at Debug.
func (e *errorLog) report(err error) {
	e.mu.Lock()
	if !e.lines.AllowN(e.now(), 1) {
		e.suppressed++
		e.mu.Unlock()
		e.log.Debug("request failed", "err", err)
		return
	}
	n := e.suppressed
	e.suppressed = 0
	e.mu.Unlock()
	if n > 0 {
		e.log.Warn("request failed", "err", err, "suppressed", n)
		return
	}
	e.log.Warn("request failed", "err", err)
}
