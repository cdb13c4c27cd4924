package protect

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/wire"
)

func ticketAAD(cluster string, t *wire.Ticket) ([]byte, error) {
	return wire.Marshal([]any{"iotguard ticket", cluster, t.SID, t.Expires, t.Initiator, t.Responder, t.Recipient})
}

// SealTicket seals sk for t.Recipient under its ticket key, with a random IV,
// filling t.Box. t's other fields must be set.
func SealTicket(ticketKey wire.Key, cluster string, t wire.Ticket, sk [wire.KeySize]byte) (wire.Ticket, error) {
	var iv [wire.NonceSize]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return t, fmt.Errorf("failed to draw ticket IV: %w", err)
	}
	aad, err := ticketAAD(cluster, &t)
	if err != nil {
		return t, err
	}
	b, err := wire.Seal(ticketKey, iv, wire.Encrypt0Header{IV: iv[:]}, aad, sk[:])
	if err != nil {
		return t, err
	}
	if err := wire.Unmarshal(b, &t.Box); err != nil {
		return t, err
	}
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
	aad, err := ticketAAD(cluster, t)
	if err != nil {
		return sk, err
	}
	var iv [wire.NonceSize]byte
	copy(iv[:], t.Box.Unprotected.IV)
	pt, err := t.Box.Open(ticketKey, iv, aad)
	if err != nil {
		return sk, err
	}
	copy(sk[:], pt)
	return sk, nil
}
