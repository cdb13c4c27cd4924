package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// talkProof authenticates the talk proof that the responder m2 forwards in
// its /session for the initiator it names, and spends it (docs/PROTOCOL.md
// §5.1). It returns the initiator's index record whatever its standing: a
// proof under the member key of the initiator's latest join authenticates
// it even after it left, was revoked or expired, and the caller warns.
//
// Cheapest first: freshness (no state), the index, the tag under the
// initiator's talk key, then the spent proofs. A proof that does not
// authenticate costs an index lookup and an AEAD, and is remembered nowhere;
// an unknown initiator and a forged tag get the same answer.
func (c *Core) talkProof(m2 ledger.Device, initiator string, p *wire.TalkProof, now time.Time) (ledger.Device, error) {
	if !protect.TalkProofFresh(p.Time, now) {
		return ledger.Device{}, refuse(ErrBadTalkProof, "stale")
	}
	m1, err := c.ledger.Lookup(initiator)
	if errors.Is(err, ledger.ErrUnknownDevice) {
		return ledger.Device{}, ErrBadTalkProof
	} else if err != nil {
		return ledger.Device{}, fmt.Errorf("failed to look up %s: %w", initiator, err)
	}
	if !c.ours(m1) { // a shared ledger: its member key is with its own CH
		return ledger.Device{}, ErrBadTalkProof
	}
	err = c.keys.VerifyTalkProof(member(m1), m2.ID, p, now)
	if errors.Is(err, wire.ErrDecrypt) {
		return ledger.Device{}, ErrBadTalkProof
	} else if errors.Is(err, keysvc.ErrDerivationsBusy) {
		return ledger.Device{}, refuse(ErrBusy, "member keys")
	} else if err != nil {
		return ledger.Device{}, fmt.Errorf("failed to check talk proof of %s: %w", initiator, err)
	}
	if err := c.spent.spend(m1.ID, p.Tag, protect.TalkProofExpiry(p.Time), now); err != nil {
		return ledger.Device{}, err
	}
	return m1, nil
}
