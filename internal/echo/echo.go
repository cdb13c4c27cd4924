// Package echo makes and checks Echo option values (RFC 9175): the proof that
// a client receives datagrams at the address it sends from. A value is 4
// bytes of time and an 8-byte HMAC-SHA-256 truncation over that time and the
// client's address under a per-process random key, so the issuer keeps no
// state per client and a value is good only for the address it was made for,
// only for Lifetime, and only in the process that made it.
//
// The cluster head uses one Issuer for all its echoes: the 4.01 challenge of
// the CoAP edge (address verification, RFC 9175 §2.4) and the freshness of
// joins and of protected requests after a restart (docs/PROTOCOL.md §3.1,
// §4.2), so that one round trip serves both.
package echo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Lifetime is how long an echo value stays fresh (docs/PROTOCOL.md §3.1).
const Lifetime = 60 * time.Second

// Len is the length of an echo value: 4-byte time ‖ 8-byte MAC.
const Len = 12

// Issuer makes and checks echo values under its own random key. It is safe
// for concurrent use and holds no other secret.
type Issuer struct{ key [32]byte }

// New returns an Issuer with a fresh random key: values made by another
// Issuer (or before a restart) are never fresh for it.
func New() *Issuer {
	var i Issuer
	rand.Read(i.key[:]) // never fails (crypto/rand, Go 1.24+)
	return &i
}

func (i *Issuer) mac(t uint32, addr string) []byte {
	m := hmac.New(sha256.New, i.key[:])
	var tb [4]byte
	binary.BigEndian.PutUint32(tb[:], t)
	m.Write(tb[:])
	m.Write([]byte(addr))
	return m.Sum(nil)[:Len-4]
}

// Echo returns a fresh echo value for a client at addr (host:port).
func (i *Issuer) Echo(addr string, now time.Time) []byte {
	t := uint32(now.Unix())
	out := binary.BigEndian.AppendUint32(make([]byte, 0, Len), t)
	return append(out, i.mac(t, addr)...)
}

// EchoFresh reports whether echo was made by this Issuer for addr within
// Lifetime before now.
func (i *Issuer) EchoFresh(echo []byte, addr string, now time.Time) bool {
	if len(echo) != Len {
		return false
	}
	t := binary.BigEndian.Uint32(echo)
	age := now.Unix() - int64(t)
	if age < 0 || age > int64(Lifetime/time.Second) {
		return false
	}
	return hmac.Equal(echo[4:], i.mac(t, addr))
}
