package keysvc

import (
	"time"

	"github.com/iotguard/iotguard/internal/echo"
)

// EchoLifetime is how long an echo value stays fresh (docs/PROTOCOL.md §3.1).
const EchoLifetime = echo.Lifetime

// Echo returns a fresh echo value for a client at addr (RFC 9175), made by
// Echoes. The CH keeps no state for it.
func (s *Service) Echo(addr string, now time.Time) []byte { return s.echoes.Echo(addr, now) }

// EchoFresh reports whether echo was made by Echoes for addr within
// EchoLifetime before now.
func (s *Service) EchoFresh(echo []byte, addr string, now time.Time) bool {
	return s.echoes.EchoFresh(echo, addr, now)
}

// Echoes returns the CH's echo issuer, for the CoAP edge's address
// verification (RFC 9175 §2.4): an Echo that verified a client's address is
// then also fresh for its join (docs/PROTOCOL.md §3.1). The issuer holds its
// own per-process key and no other secret.
func (s *Service) Echoes() *echo.Issuer { return s.echoes }
