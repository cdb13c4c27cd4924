package admin

import "errors"

// ErrNotRunning is returned by the clients when no server listens on the
// data directory's control socket (no socket, or a stale one).
var ErrNotRunning = errors.New("no cluster head is running")
