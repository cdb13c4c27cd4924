package coapedge

import "time"

// WithClock sets the clock of the rate limits and the echoes: tests freeze
// it, so that no bucket refills while they run.
func WithClock(now func() time.Time) Option { return func(c *Config) { c.now = now } }

// WithMaxSources sets how many sources the rate limiter remembers.
func WithMaxSources(n int) Option { return func(c *Config) { c.maxSources = n } }

// WithMaxStateless sets how many requests are served without an
// association at once.
func WithMaxStateless(n int) Option { return func(c *Config) { c.maxStateless = n } }

// MaxAmplification is the reflection bound.
const MaxAmplification = maxAmplification

// SourceKey is the rate limiter's notion of a source.
var SourceKey = sourceKey
