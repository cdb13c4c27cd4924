package coapsrv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"golang.org/x/time/rate"

	"github.com/iotguard/iotguard/wire"
)

// maxDatagram bounds what go-coap reads. It is larger than any valid request
// (wire.MaxPayload plus header and options) on purpose: a datagram go-coap
// refuses to read is dropped silently, while one it reads gets our 4.13.
const maxDatagram = 64 * 1024

// maxSources bounds the rate limiter's memory: the least recently seen
// sources are forgotten first (and start again with a full bucket).
const maxSources = 1 << 16

// limits is the middleware of cheap checks run before any handler: the
// per-source rate limit, then the payload size.
func (s *Server) limits() mux.MiddlewareFunc {
	var mu sync.Mutex
	buckets, _ := lru.New[string, *rate.Limiter](maxSources)
	allow := func(addr net.Addr) bool {
		if s.cfg.RateLimit <= 0 {
			return true
		}
		ip := addr.String()
		if u, ok := addr.(*net.UDPAddr); ok {
			ip = u.IP.String()
		}
		mu.Lock()
		defer mu.Unlock()
		b, ok := buckets.Get(ip)
		if !ok {
			b = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), int(2*s.cfg.RateLimit)+1)
			buckets.Add(ip, b)
		}
		return b.Allow()
	}
	return func(next mux.Handler) mux.Handler {
		return mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
			defer func() { // a bug in a handler must not take the cluster head down
				if p := recover(); p != nil {
					s.cfg.Errors(fmt.Errorf("%v: handler panic: %v", w.Conn().RemoteAddr(), p))
					s.diagnostic(w, codes.InternalServerError, "internal error")
				}
			}()
			if !allow(w.Conn().RemoteAddr()) {
				s.diagnostic(w, codes.TooManyRequests, "rate limited", message.Option{ID: message.MaxAge, Value: []byte{1}})
				s.observe(r, codes.TooManyRequests, 0)
				return
			}
			// Every valid request fits one datagram, so block-wise transfer
			// (disabled in go-coap) is refused at its first block.
			size1, _ := r.GetOptionUint32(message.Size1)
			if n, err := r.BodySize(); (err == nil && n > wire.MaxPayload) || size1 > wire.MaxPayload || r.HasOption(message.Block1) {
				var size1 [4]byte
				binary.BigEndian.PutUint32(size1[:], wire.MaxPayload)
				s.diagnostic(w, codes.RequestEntityTooLarge, "too large", message.Option{ID: message.Size1, Value: size1[2:]})
				s.observe(r, codes.RequestEntityTooLarge, 0)
				return
			}
			next.ServeCOAP(w, r)
		})
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "use of closed")
}
