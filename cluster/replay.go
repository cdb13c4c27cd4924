package cluster

import (
	"bytes"
	"sync"
	"time"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/replay"
)

// memberState is this process's replay state for one member's current K_m.
// Invariant: it is tied to the join it was made for, named by the join's CH
// nonce (drawn afresh for every join; a device nonce may come back,
// docs/PROTOCOL.md §3.3); a rejoin (new K_m, sequence numbers from 0)
// replaces it. Only an authenticated request or a join makes or touches one.
// States are bounded (Config.ReplayStates); losing one, by a restart or by
// eviction, is safe, because its successor needs an echo and then spends
// every older sequence number (replay.Window.Restart) — and because a state
// is evicted only once idle past evictable, so that every echo its member
// used is stale and no request it accepted can be replayed into its
// successor.
type memberState struct {
	mu      sync.Mutex
	chNonce []byte
	window  replay.Window
	// needsEcho is set for members this process has not seen join: their
	// window was lost with the previous process, so the first request must
	// prove freshness with an echo (docs/PROTOCOL.md §4.2).
	needsEcho bool
	used      time.Time // guarded by Core.mu: the last request or join that touched it
}

// evictable is how long a state must be idle before it may be evicted: an
// echo's lifetime, and a second more since echo ages count whole seconds.
const evictable = keysvc.EchoLifetime + time.Second

// state returns d's replay state, touched at now, making one that needs an
// echo when this process has none for d's current join. Call it only for an
// authenticated request: it may evict the least recently used state, and
// refuses (ErrBusy) when that one is not evictable yet.
func (c *Core) state(d ledger.Device, now time.Time) (*memberState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.members.Get(d.ID)
	if !ok || !bytes.Equal(s.chNonce, d.CHNonce) {
		if !ok && !c.room(now) {
			return nil, ErrBusy
		}
		s = &memberState{chNonce: d.CHNonce, needsEcho: true}
		c.members.Add(d.ID, s)
	}
	if now.After(s.used) { // concurrent requests may come with their clocks read in another order
		s.used = now
	}
	return s, nil
}

// room reports whether a new state fits, evicting the least recently used
// one if it is evictable. c.mu is held.
func (c *Core) room(now time.Time) bool {
	if c.members.Len() < c.cfg.ReplayStates {
		return true
	}
	if _, oldest, _ := c.members.GetOldest(); now.Sub(oldest.used) < evictable {
		return false
	}
	c.members.RemoveOldest()
	return true
}

// joined starts a fresh window for d's new join: no echo needed, since the
// K_m is new and this process saw its birth. With no room for it, d has no
// state until its first request, which then proves freshness with an echo.
func (c *Core) joined(d ledger.Device) {
	now := c.cfg.Now()
	c.mu.Lock()
	s, ok := c.members.Peek(d.ID) // a replayed join is no activity of the member's
	if ok && bytes.Equal(s.chNonce, d.CHNonce) {
		c.mu.Unlock()
		return // a replayed join must not reset the window
	}
	if ok || c.room(now) {
		c.members.Add(d.ID, &memberState{chNonce: d.CHNonce, used: now})
	}
	c.mu.Unlock()
	c.retire(d.ID) // the keys of its previous join, if any, are dead
}

// forget drops id's replay state once its K_m is dead (leave, revoke).
func (c *Core) forget(id string) {
	c.mu.Lock()
	c.members.Remove(id)
	c.mu.Unlock()
	c.retire(id)
}

// OnKeyRetired installs f, called with a member's ID when the keys of its
// join die: it left, was revoked, or joined again. The coaps listener closes
// that member's DTLS sessions, whose PSK came from those keys. f must be
// cheap and safe for concurrent use.
func (c *Core) OnKeyRetired(f func(id string)) { c.retired.Store(&f) }

func (c *Core) retire(id string) {
	if f := c.retired.Load(); f != nil {
		(*f)(id)
	}
}
