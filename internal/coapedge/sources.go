package coapedge

import (
	"net"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/iotguard/iotguard/internal/source"
)

// maxSources bounds the rate limiter's memory: how many sources it keeps a
// bucket for (~200 B each).
const maxSources = 1 << 16

// sources is the per-source rate limit (stage 4, and stage 2 for a source's
// new associations): a token bucket per source, refilled at the rate, with
// bursts of twice the rate plus one. A source is an IPv4 address or an IPv6
// /64, the share of addresses one host usually holds: a host that rotates
// through its /64 is still one source.
//
// Address rotation cannot reset a source's bucket. A bucket is forgotten
// only to make room for a new source, and only when it is full — when
// forgetting it loses nothing, since a new bucket starts full. When the
// table is full of sources that sent in the last few seconds (their buckets
// not yet refilled), a new source gets no bucket of its own: it draws on one
// shared bucket, the crowd's, with every other source in that position,
// until room appears. So however many addresses an attacker cycles through,
// no source ever gets a burst it would not have had anyway, and the sources
// the table cannot hold share one source's budget.
type sources struct {
	limit rate.Limit // 0: no limit at all
	burst int
	max   int

	mu      sync.Mutex
	buckets *lru.Cache[string, *rate.Limiter]
	crowd   *rate.Limiter
}

func newSources(perSecond float64, max int) *sources {
	s := &sources{limit: rate.Limit(perSecond), burst: int(2*perSecond) + 1, max: max}
	if perSecond > 0 {
		s.buckets, _ = lru.New[string, *rate.Limiter](max) // cannot fail: max > 0
		s.crowd = rate.NewLimiter(s.limit, s.burst)
	}
	return s
}

// sourceKey is addr's source (internal/source): its IPv4 address, or its
// IPv6 /64.
func sourceKey(addr net.Addr) string {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return addr.String()
	}
	return source.Of(u.IP)
}

// bucket returns the bucket of key at now, making room for it if it is new.
// Must be called with s.mu held.
func (s *sources) bucket(key string, now time.Time) *rate.Limiter {
	if b, ok := s.buckets.Get(key); ok {
		return b
	}
	if s.buckets.Len() >= s.max {
		// The least recently seen source has had the longest to refill; if
		// even its bucket is not full, none can be forgotten for free.
		if _, oldest, _ := s.buckets.GetOldest(); oldest.TokensAt(now) < float64(s.burst) {
			return s.crowd
		}
		s.buckets.RemoveOldest()
	}
	b := rate.NewLimiter(s.limit, s.burst)
	s.buckets.Add(key, b)
	return b
}

// allow takes a token from addr's source at now and reports whether it had
// one.
func (s *sources) allow(addr net.Addr, now time.Time) bool { return s.allowN(addr, now, 1) }

// allowN takes n tokens (at most a burst) from addr's source at now and
// reports whether it had them.
func (s *sources) allowN(addr net.Addr, now time.Time, n int) bool {
	n = min(max(n, 1), s.burst)
	return s.check(addr, now, func(b *rate.Limiter) bool { return b.AllowN(now, n) })
}

// ready reports whether addr's source has a token at now, taking none.
func (s *sources) ready(addr net.Addr, now time.Time) bool {
	return s.check(addr, now, func(b *rate.Limiter) bool { return b.TokensAt(now) >= 1 })
}

// check applies f to the bucket of addr's source at now (true when there is
// no limit).
func (s *sources) check(addr net.Addr, now time.Time, f func(*rate.Limiter) bool) bool {
	if s.limit <= 0 {
		return true
	}
	key := sourceKey(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s.bucket(key, now))
}
