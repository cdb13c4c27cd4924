package cluster

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/iotguard/iotguard/internal/source"
)

// joinPlaces are Config.JoinRate's places: the joins whose signatures are
// checked, per second, all sources together, shared among the sources that
// want them. A flood from a few sources cannot take every place: in each
// second, a source (internal/source: an IPv4 address, an IPv6 /64) takes at
// most its share, fifteen sixteenths of the rate over the number of sources
// that took places in the second before, so that the sources of a flood,
// however fast they send, leave at least a sixteenth of the places to
// sources that took none. A lone source (a gateway through which many
// devices rejoin) still gets fifteen sixteenths of the rate. Memory: one
// entry per source that took a place this second, at most the rate plus its
// burst.
type joinPlaces struct {
	perSecond float64

	mu     sync.Mutex
	all    *rate.Limiter  // the rate, in bursts of one second's worth
	second time.Time      // when the current second began
	taken  map[string]int // places each source took in it
	share  int            // the most one source may take in it
}

func newJoinPlaces(perSecond float64) *joinPlaces {
	burst := max(1, int(perSecond))
	return &joinPlaces{perSecond: perSecond, all: rate.NewLimiter(rate.Limit(perSecond), burst), taken: map[string]int{}}
}

// take reports whether the join from addr ("host:port") may have its
// signature checked at now, and if so counts its place.
func (p *joinPlaces) take(addr string, now time.Time) bool {
	src := source.OfAddr(addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := now.Sub(p.second); d >= time.Second || d < 0 {
		p.share = max(1, int(p.perSecond*15/16/float64(max(1, len(p.taken)))))
		p.second = now
		clear(p.taken)
	}
	if p.taken[src] >= p.share || !p.all.AllowN(now, 1) {
		return false
	}
	p.taken[src]++
	return true
}
