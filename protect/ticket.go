package protect

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/wire"
)

// ticketAAD is the AEAD's AAD of ticket t: the Enc_structure over the
// external AAD ["iotguard ticket", cluster, sid, expires, initiator,
// responder, recipient] (docs/PROTOCOL.md §4.4).
func ticketAAD(cluster string, t *wire.Ticket) wire.AAD {
	return wire.NewAAD(wire.NewTuple(7).Text("iotguard ticket").Text(cluster).Bytes(t.SID).
		Uint(t.Expires).Text(t.Initiator).Text(t.Responder).Text(t.Recipient))
}

// SealTicket seals sk for t.Recipient under its ticket key, with a random IV,
// filling t.Box. t's other fields must be set.
func SealTicket(ticketKey wire.Key, cluster string, t wire.Ticket, sk [wire.KeySize]byte) (wire.Ticket, error) {
	var iv [wire.NonceSize]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return t, fmt.Errorf("failed to draw ticket IV: %w", err)
	}
	t.Box = ticketAAD(cluster, &t).SealBox(ticketKey, iv, wire.Encrypt0Header{IV: iv[:]}, sk[:])
	return t, nil
}

// OpenTicket returns the Sk in t if t is sealed to me under ticketKey, names
// me as recipient and has not expired at now.
func OpenTicket(ticketKey wire.Key, cluster, me string, t *wire.Ticket, now time.Time) ([wire.KeySize]byte, error) {
	var sk [wire.KeySize]byte
	if err := t.Validate(); err != nil {
		return sk, err
	}
	if t.Recipient != me {
		return sk, fmt.Errorf("%w: ticket is for %s, not %s", ErrWrongRecipient, t.Recipient, me)
	}
	if uint64(now.Unix()) >= t.Expires {
		return sk, ErrExpired
	}
	aad := ticketAAD(cluster, t)
	var iv [wire.NonceSize]byte
	copy(iv[:], t.Box.Unprotected.IV)
	pt, err := aad.Open(&t.Box, ticketKey, iv)
	if err != nil {
		return sk, err
	}
	copy(sk[:], pt)
	return sk, nil
}
