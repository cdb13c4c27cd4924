package protect

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// MemberKeys are the keys a member and its CH derive from K_m (§3.4).
// IMPORTANT: they are secrets; never log or persist them.
type MemberKeys struct {
	Req    wire.Key             // device → CH
	Resp   wire.Key             // CH → device
	Ticket wire.Key             // tickets the CH seals to this member
	Talk   wire.Key             // the member's talk proofs (§5.1)
	IV     [wire.NonceSize]byte // nonce base, both directions
	// PSK is the member's DTLS pre-shared key for coaps (§4.5): the 16 bytes
	// HKDF gives for "iotguard dtls psk", written as 32 lowercase hex
	// digits, which are the key's bytes — so that a command line can carry
	// it (coap-client -k). It is used for nothing else.
	PSK [2 * PSKSize]byte
}

// PSKSize is the entropy of a member's DTLS PSK in bytes.
const PSKSize = 16

// MemberKey derives K_m from the ECDH shared secret z (32 bytes), both join
// nonces, the cluster ID, the device ID and the CH key thumbprint.
func MemberKey(z, deviceNonce, chNonce []byte, cluster, id string, thumbprint [32]byte) ([32]byte, error) {
	var km [32]byte
	info := wire.NewTuple(4).Text("iotguard K_m").Text(cluster).Text(id).Bytes(thumbprint[:])
	salt := append(append([]byte{}, deviceNonce...), chNonce...)
	b, err := hkdf.Key(sha256.New, z, salt, string(info), len(km))
	if err != nil {
		return km, fmt.Errorf("failed to derive K_m for %s: %w", id, err)
	}
	copy(km[:], b)
	return km, nil
}

// DeriveMemberKeys expands K_m into the request, response, ticket and talk
// keys and the common IV.
func DeriveMemberKeys(km [32]byte) MemberKeys {
	var req, resp, ticket, talk [wire.KeySize]byte
	expand := expander(km[:], nil)
	expand("iotguard req key", req[:])
	expand("iotguard resp key", resp[:])
	expand("iotguard ticket key", ticket[:])
	expand("iotguard talk key", talk[:])
	k := MemberKeys{Req: wire.NewKey(req), Resp: wire.NewKey(resp), Ticket: wire.NewKey(ticket), Talk: wire.NewKey(talk)}
	expand("iotguard common iv", k.IV[:])
	var psk [PSKSize]byte
	expand("iotguard dtls psk", psk[:])
	hex.Encode(k.PSK[:], psk[:])
	return k
}

// M2MKeys are one sender's key and IV within a session (§5.2).
type M2MKeys struct {
	Key wire.Key
	IV  [wire.NonceSize]byte
}

// DeriveM2M derives the keys of both senders in session sid between me and
// peer from Sk: what me sends with, and what me opens the peer's messages
// with. Sk is extracted once for both.
func DeriveM2M(sk [wire.KeySize]byte, sid []byte, me, peer string) (send, recv M2MKeys) {
	expand := expander(sk[:], sid)
	return senderKeys(expand, me), senderKeys(expand, peer)
}

// senderKeys expands sender's key and IV (§5.2).
func senderKeys(expand func(info string, out []byte), sender string) M2MKeys {
	var k M2MKeys
	var key [wire.KeySize]byte
	expand(string(wire.NewTuple(2).Text("iotguard m2m key").Text(sender)), key[:])
	expand(string(wire.NewTuple(2).Text("iotguard m2m iv").Text(sender)), k.IV[:])
	k.Key = wire.NewKey(key)
	return k
}

// expander returns HKDF-SHA-256 with ikm and salt extracted once: each call
// fills out with HKDF-Expand(PRK, info), which equals HKDF(ikm, salt, info).
func expander(ikm, salt []byte) func(info string, out []byte) {
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		panic(err) // Extract fails only in FIPS mode for short keys: ours are 16 and 32 bytes
	}
	return func(info string, out []byte) {
		b, err := hkdf.Expand(sha256.New, prk, info, len(out))
		if err != nil {
			panic(err) // only for lengths over 255*32: ours are fixed and small
		}
		copy(out, b)
	}
}

// Nonce returns iv XOR seq, seq as a 12-byte big-endian integer.
func Nonce(iv [wire.NonceSize]byte, seq uint64) [wire.NonceSize]byte {
	var s [wire.NonceSize]byte
	binary.BigEndian.PutUint64(s[4:], seq)
	for i := range s {
		s[i] ^= iv[i]
	}
	return s
}

// MaxSeq is the largest sequence number: partial IVs are at most 5 bytes.
const MaxSeq = 1<<40 - 1

// EncodePartialIV returns seq big-endian without leading zeros (0 → 0x00).
func EncodePartialIV(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	i := 0
	for i < 7 && b[i] == 0 {
		i++
	}
	return append([]byte{}, b[i:]...)
}

// DecodePartialIV is the strict inverse of EncodePartialIV: 1–5 bytes and no
// leading zero byte unless the value is 0, so every seq has one encoding.
func DecodePartialIV(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > wire.MaxPartialIV || (len(b) > 1 && b[0] == 0) {
		return 0, fmt.Errorf("%w: partial IV must be 1-5 bytes without leading zeros", wire.ErrMalformed)
	}
	var seq uint64
	for _, c := range b {
		seq = seq<<8 | uint64(c)
	}
	return seq, nil
}
