package device

import (
	"errors"
	"sync"
	"time"
)

// A listener's pause in asking its CH about hellos (PROTOCOL.md §5.1): after
// a /session its CH left unanswered it forwards none for forwardPause,
// twice as long after each next one, at most forwardPauseMax; any answer of
// the CH ends the pause. The C listener follows the same rule
// (IOG_TALK_CH_PAUSE_MS).
const (
	forwardPause    = 30 * time.Second
	forwardPauseMax = 10 * time.Minute
)

// forwarding holds a listener's pause. A forwarded hello costs the device a
// sequence number, a sync of its file and, with the CH silent, up to the
// request's timeout under the device's lock: without the pause, hellos from
// anywhere — well-formed, fresh, each with a new proof — would keep the
// device from its own requests for as long as its CH is unreachable.
type forwarding struct {
	mu    sync.Mutex
	until time.Time     // no hello is forwarded before it
	pause time.Duration // the last pause; 0 once the CH answered
}

// paused reports whether no hello may be forwarded at now.
func (f *forwarding) paused(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return now.Before(f.until)
}

// done records how the CH took a forwarded hello at now: err is the
// /session's error, nil when it answered with a session.
func (f *forwarding) done(err error, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if answered(err) {
		f.until, f.pause = time.Time{}, 0
		return
	}
	f.pause = min(max(2*f.pause, forwardPause), forwardPauseMax)
	f.until = now.Add(f.pause)
}

// answered reports whether err, a /session's error, is the CH's answer: a
// session, a warning, a refusal or an answer that does not open, and not
// the CH's silence (a timeout, an association that ended).
func answered(err error) bool {
	var w *Warning
	var ce *CodeError
	return err == nil || errors.As(err, &w) || errors.As(err, &ce) || errors.Is(err, ErrBadResponse)
}
