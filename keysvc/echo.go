package keysvc

import (
	"time"

	"github.com/iotguard/iotguard/internal/echo"
)

// EchoLifetime is how long an echo value stays fresh (docs/PROTOCOL.md §3.1).
const EchoLifetime = echo.Lifetime

// Echo returns a fresh echo value for a client at addr (RFC 9175), stamped
// with height: the ledger height the caller had committed when it made the
// value. The CH keeps no state for it: the value authenticates its own time,
// height and address, so a request that carries it was made after both.
func (s *Service) Echo(addr string, now time.Time, height uint64) []byte {
	return s.echoes.Echo(addr, now, height)
}

// EchoFresh reports whether echo was made by Echo for addr within
// EchoLifetime before now, and if so the height it was stamped with.
func (s *Service) EchoFresh(echo []byte, addr string, now time.Time) (height uint64, fresh bool) {
	return s.echoes.EchoFresh(echo, addr, now)
}
