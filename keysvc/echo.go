package keysvc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// EchoLifetime is how long an echo value stays fresh (docs/PROTOCOL.md §3.1).
const EchoLifetime = 60 * time.Second

const echoLen = 12 // 4-byte time ‖ 8-byte MAC

func (s *Service) echoMAC(t uint32, addr string) []byte {
	m := hmac.New(sha256.New, s.echoKey[:])
	var tb [4]byte
	binary.BigEndian.PutUint32(tb[:], t)
	m.Write(tb[:])
	m.Write([]byte(addr))
	return m.Sum(nil)[:echoLen-4]
}

// Echo returns a fresh echo value for a client at addr (RFC 9175). The CH
// keeps no state for it: the value authenticates its own time and address.
func (s *Service) Echo(addr string, now time.Time) []byte {
	t := uint32(now.Unix())
	out := binary.BigEndian.AppendUint32(make([]byte, 0, echoLen), t)
	return append(out, s.echoMAC(t, addr)...)
}

// EchoFresh reports whether echo was made by this process for addr within
// EchoLifetime before now.
func (s *Service) EchoFresh(echo []byte, addr string, now time.Time) bool {
	if len(echo) != echoLen {
		return false
	}
	t := binary.BigEndian.Uint32(echo)
	age := now.Unix() - int64(t)
	if age < 0 || age > int64(EchoLifetime/time.Second) {
		return false
	}
	return hmac.Equal(echo[4:], s.echoMAC(t, addr))
}
