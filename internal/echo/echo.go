// Package echo makes and checks Echo option values (RFC 9175): the proof that
// a client receives datagrams at the address it sends from. A value is 4
// bytes of time, 8 of ledger height and an 8-byte HMAC-SHA-256 truncation over
// them and the client's address under a per-process random key, so the issuer keeps no
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
	"hash"
	"io"
	"sync"
	"time"
)

// Lifetime is how long an echo value stays fresh (docs/PROTOCOL.md §3.1).
const Lifetime = 60 * time.Second

// An echo value is 4-byte time (unix s) ‖ 8-byte ledger height ‖ 8-byte MAC,
// big-endian; the MAC is HMAC-SHA-256 under the Issuer's key over the time,
// the height and the client address, truncated.
const (
	timeLen   = 4
	heightLen = 8
	macLen    = 8
	// Len is the length of an echo value.
	Len = timeLen + heightLen + macLen
)

// Issuer makes and checks echo values under its own random key. It is safe
// for concurrent use and holds no other secret.
type Issuer struct {
	key [32]byte
	// macs holds HMAC states keyed with key, each Reset before it goes back:
	// an HMAC's key schedule and state are made once, not per value (the
	// challenge of a spoofed datagram costs one HMAC, and nothing else).
	macs sync.Pool
}

// New returns an Issuer with a fresh random key: values made by another
// Issuer (or before a restart) are never fresh for it.
func New() *Issuer {
	i := &Issuer{}
	rand.Read(i.key[:]) // never fails (crypto/rand, Go 1.24+)
	i.macs.New = func() any { return hmac.New(sha256.New, i.key[:]) }
	return i
}

func (i *Issuer) mac(stamp []byte, addr string) []byte {
	m := i.macs.Get().(hash.Hash)
	defer i.macs.Put(m)
	defer m.Reset()
	m.Write(stamp)
	io.WriteString(m, addr)
	return m.Sum(make([]byte, 0, sha256.Size))[:macLen]
}

// Echo returns a fresh echo value for a client at addr (host:port), stamped
// with height: the ledger height the caller had committed when it made the
// value, so that a request carrying it was made after every event up to it.
func (i *Issuer) Echo(addr string, now time.Time, height uint64) []byte {
	out := binary.BigEndian.AppendUint32(make([]byte, 0, Len), uint32(now.Unix()))
	out = binary.BigEndian.AppendUint64(out, height)
	return append(out, i.mac(out, addr)...)
}

// Stamp returns the time (unix seconds) and the ledger height that echo
// value v was made with, and whether v has an echo value's length. It does
// not check the MAC, which only the value's issuer can: it is for a
// replicated ledger's validators, which check that a join records the height
// of the echo its device signed (bftledger). IMPORTANT: so the time and height
// fields are part of a shared ledger's consensus rules: moving them is a
// change of its AppVersion.
func Stamp(v []byte) (unixSec int64, height uint64, ok bool) {
	if len(v) != Len {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint32(v)), binary.BigEndian.Uint64(v[timeLen:]), true
}

// EchoFresh reports whether echo was made by this Issuer for addr within
// Lifetime before now, and if so the height it was stamped with.
func (i *Issuer) EchoFresh(echo []byte, addr string, now time.Time) (height uint64, fresh bool) {
	if len(echo) != Len {
		return 0, false
	}
	age := now.Unix() - int64(binary.BigEndian.Uint32(echo))
	if age < 0 || age > int64(Lifetime/time.Second) {
		return 0, false
	}
	stamp := echo[:timeLen+heightLen]
	if !hmac.Equal(echo[len(stamp):], i.mac(stamp, addr)) {
		return 0, false
	}
	return binary.BigEndian.Uint64(echo[timeLen:]), true
}
