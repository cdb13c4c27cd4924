package keysvc

import (
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// SetCacheSizes gives s empty member-key caches of these sizes (members in
// use, unproven), so that a test can fill them with few derivations. Call
// it before use.
func (s *Service) SetCacheSizes(members, unproven int) {
	s.members, _ = lru.New[cacheKey, *memberEntry](members)
	s.unproven, _ = lru.New[cacheKey, *memberEntry](unproven)
}

// SetFailedDerivations gives s a budget of burst places for derivations
// whose message fails, refilled at perSecond. Call it before use.
func (s *Service) SetFailedDerivations(perSecond float64, burst int) {
	s.failed = rate.NewLimiter(rate.Limit(perSecond), burst)
}
