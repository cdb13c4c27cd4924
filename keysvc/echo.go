package keysvc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// EchoLifetime is how long an echo value stays fresh (docs/PROTOCOL.md §3.1).
const EchoLifetime = 60 * time.Second

// An echo is 4-byte time (unix s) ‖ 8-byte ledger height ‖ 8-byte MAC, all
// big-endian; the MAC is HMAC-SHA-256 under the per-process echo key over
// the time, the height and the client address, truncated.
const (
	echoTimeLen   = 4
	echoHeightLen = 8
	echoMACLen    = 8
	echoLen       = echoTimeLen + echoHeightLen + echoMACLen
)

func (s *Service) echoMAC(stamp []byte, addr string) []byte {
	m := hmac.New(sha256.New, s.echoKey[:])
	m.Write(stamp)
	m.Write([]byte(addr))
	return m.Sum(nil)[:echoMACLen]
}

// Echo returns a fresh echo value for a client at addr (RFC 9175), stamped
// with height: the ledger height the caller had committed when it made the
// value. The CH keeps no state for it: the value authenticates its own time,
// height and address, so a request that carries it was made after both.
func (s *Service) Echo(addr string, now time.Time, height uint64) []byte {
	out := make([]byte, 0, echoLen)
	out = binary.BigEndian.AppendUint32(out, uint32(now.Unix()))
	out = binary.BigEndian.AppendUint64(out, height)
	return append(out, s.echoMAC(out, addr)...)
}

// EchoFresh reports whether echo was made by this process for addr within
// EchoLifetime before now, and if so the height it was stamped with.
func (s *Service) EchoFresh(echo []byte, addr string, now time.Time) (height uint64, fresh bool) {
	if len(echo) != echoLen {
		return 0, false
	}
	t := binary.BigEndian.Uint32(echo)
	age := now.Unix() - int64(t)
	if age < 0 || age > int64(EchoLifetime/time.Second) {
		return 0, false
	}
	stamp := echo[:echoTimeLen+echoHeightLen]
	if !hmac.Equal(echo[len(stamp):], s.echoMAC(stamp, addr)) {
		return 0, false
	}
	return binary.BigEndian.Uint64(echo[echoTimeLen:]), true
}
