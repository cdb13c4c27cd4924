package protect

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/wire"
)

// ticketExternalAAD is a ticket's external AAD (docs/PROTOCOL.md §4.4).
type ticketExternalAAD struct {
	_         struct{} `cbor:",toarray"`
	Label     string   // "iotguard ticket"
	Cluster   string
	SID       []byte
	Expires   uint64
	Initiator string
	Responder string
	Recipient string
}

// ticketAAD is the AEAD's AAD of ticket t.
func ticketAAD(cluster string, t *wire.Ticket) (wire.AAD, error) {
	external, err := wire.Marshal(ticketExternalAAD{Label: "iotguard ticket", Cluster: cluster, SID: t.SID,
		Expires: t.Expires, Initiator: t.Initiator, Responder: t.Responder, Recipient: t.Recipient})
	if err != nil {
		return wire.AAD{}, err
	}
	return wire.NewAAD(external), nil
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
	t.Box = aad.SealBox(ticketKey, iv, wire.Encrypt0Header{IV: iv[:]}, sk[:])
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
	pt, err := aad.Open(&t.Box, ticketKey, iv)
	if err != nil {
		return sk, err
	}
	copy(sk[:], pt)
	return sk, nil
}
