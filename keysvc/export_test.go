package keysvc

import lru "github.com/hashicorp/golang-lru/v2"

// SetCacheSizes gives s empty member-key caches of these sizes (members in
// use, unproven), so that a test can fill them with few derivations. Call
// it before use.
func (s *Service) SetCacheSizes(members, unproven int) {
	s.members, _ = lru.New[cacheKey, *memberEntry](members)
	s.unproven, _ = lru.New[cacheKey, *memberEntry](unproven)
}
