package cluster

import (
	"bytes"
	"sync"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/replay"
)

// memberState is this process's replay state for one member's current K_m.
// Invariant: it is tied to the join nonce it was made for; a rejoin (new
// nonce, new K_m, sequence numbers from 0) replaces it. States are bounded
// (Config.ReplayStates): losing one, by eviction or a restart, is safe,
// because its successor needs an echo and then spends every older sequence
// number (replay.Window.Restart).
type memberState struct {
	mu          sync.Mutex
	deviceNonce []byte
	window      replay.Window
	// needsEcho is set for members this process has not seen join: their
	// window was lost with the previous process, so the first request must
	// prove freshness with an echo (docs/PROTOCOL.md §4.2).
	needsEcho bool
}

// state returns d's replay state, making one that needs an echo when this
// process has none for d's current join.
func (c *Core) state(d ledger.Device) *memberState {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.members.Get(d.ID)
	if !ok || !bytes.Equal(s.deviceNonce, d.DeviceNonce) {
		s = &memberState{deviceNonce: d.DeviceNonce, needsEcho: true}
		c.members.Add(d.ID, s)
	}
	return s
}

// joined starts a fresh window for d's new join: no echo needed, since the
// K_m is new and this process saw its birth.
func (c *Core) joined(d ledger.Device) {
	c.mu.Lock()
	if s, ok := c.members.Get(d.ID); ok && bytes.Equal(s.deviceNonce, d.DeviceNonce) {
		c.mu.Unlock()
		return // a replayed join must not reset the window
	}
	c.members.Add(d.ID, &memberState{deviceNonce: d.DeviceNonce})
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
