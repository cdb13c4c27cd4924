package coapedge

import (
	"net"
	"time"
)

// WithClock sets the clock of the rate limits and the echoes: tests freeze
// it, so that no bucket refills while they run.
func WithClock(now func() time.Time) Option { return func(c *Config) { c.now = now } }

// WithMaxSources sets how many sources the rate limiter remembers.
func WithMaxSources(n int) Option { return func(c *Config) { c.maxSources = n } }

// WithMaxStateless sets how many requests are served without an
// association at once.
func WithMaxStateless(n int) Option { return func(c *Config) { c.maxStateless = n } }

// WithMaxKept sets how many answers the stateless path keeps for duplicates.
func WithMaxKept(n int) Option { return func(c *Config) { c.maxKept = n } }

// MaxAmplification is the reflection bound.
const MaxAmplification = maxAmplification

// SourceKey is the rate limiter's notion of a source.
var SourceKey = sourceKey

// DTLSAdmitter returns the admission of a coaps edge's guard, with
// maxPerSource associations per source: whether an association from an
// address is admitted (and then held, as none is released).
func DTLSAdmitter(maxPerSource int) func(net.Addr) bool {
	g := newDTLSGuard(DTLSConfig{MaxPerSource: maxPerSource}.withDefaults())
	return func(addr net.Addr) bool {
		a := &association{g: g, source: sourceKey(addr)}
		if !g.admit(a) {
			return false
		}
		g.established(a) // held: an established association is never evicted
		return true
	}
}
