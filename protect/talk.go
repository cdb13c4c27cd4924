package protect

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/wire"
)

// TalkProofLifetime is how far a talk proof's time may lie from the clock of
// whoever checks it, either way (docs/PROTOCOL.md §5.1): it bounds both the
// clock skew between an initiator and the CH and how long a captured hello
// stays worth replaying. Whoever remembers spent proofs must remember each
// until TalkProofExpiry, after which TalkProofFresh refuses it anyway.
const TalkProofLifetime = 60 * time.Second

// talkAAD is the external AAD of a talk proof (§5.1).
func talkAAD(cluster, initiator, responder string, nonce []byte, t uint64) wire.Tuple {
	return wire.NewTuple(6).Text("iotguard talk").Text(cluster).Text(initiator).Text(responder).Bytes(nonce).Uint(t)
}

// NewTalkProof returns initiator's proof, under its talk key, that it asks
// responder to talk at now, with a fresh random nonce.
func NewTalkProof(talkKey wire.Key, cluster, initiator, responder string, now time.Time) (*wire.TalkProof, error) {
	var nonce [wire.NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("failed to draw talk nonce: %w", err)
	}
	return SealTalkProof(talkKey, cluster, initiator, responder, nonce, uint64(now.Unix()))
}

// SealTalkProof returns the talk proof of initiator to responder with this
// nonce and time (unix s). IMPORTANT: a nonce must never be used twice under
// the same talk key; NewTalkProof draws it at random.
func SealTalkProof(talkKey wire.Key, cluster, initiator, responder string, nonce [wire.NonceSize]byte, t uint64) (*wire.TalkProof, error) {
	aad := talkAAD(cluster, initiator, responder, nonce[:], t)
	return &wire.TalkProof{Nonce: nonce[:], Time: t, Tag: wire.Tag(talkKey, nonce, aad)}, nil
}

// TalkProofFresh reports whether a proof made at t (unix s) may be accepted
// at now: at most TalkProofLifetime from now, before or after.
func TalkProofFresh(t uint64, now time.Time) bool {
	life := uint64(TalkProofLifetime / time.Second)
	n := uint64(max(now.Unix(), 0))
	return t+life >= n && t <= n+life
}

// TalkProofExpiry is the last second (unix) at which a proof made at t is
// fresh: a cache of spent proofs keeps each until then.
func TalkProofExpiry(t uint64) int64 {
	return int64(min(t, 1<<62) + uint64(TalkProofLifetime/time.Second))
}

// VerifyTalkProof checks that p is initiator's fresh proof, under its talk
// key, of asking responder to talk: ErrStale if its time is too far from
// now, wire.ErrDecrypt if the tag does not verify. It does not check replay:
// the caller remembers spent proofs.
func VerifyTalkProof(talkKey wire.Key, cluster, initiator, responder string, p *wire.TalkProof, now time.Time) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if !TalkProofFresh(p.Time, now) {
		return ErrStale
	}
	aad := talkAAD(cluster, initiator, responder, p.Nonce, p.Time)
	return wire.CheckTag(talkKey, [wire.NonceSize]byte(p.Nonce), aad, p.Tag)
}
