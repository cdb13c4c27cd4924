package device

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/membership"
)

// ErrNotJoined is returned by requests that need a membership the device
// does not have (never joined, or left).
var ErrNotJoined = errors.New("device has not joined a cluster")

// ErrOutcomeUnknown is returned by Join when the CH kept answering 5.03
// "outcome not known yet" (its ledger has not decided the join) until the
// device's retries or its context ran out, or when no answer came to a join
// it sent. The join may still be recorded: the device keeps its nonce
// (State.PendingJoin), and its next Join to the same cluster resends the
// same join instead of a new one.
var ErrOutcomeUnknown = errors.New("join outcome not known yet")

// ErrBadResponse is returned when a response fails its checks: bad signature,
// wrong cluster, device or nonce, undecryptable, a join answer whose
// membership has already expired.
var ErrBadResponse = errors.New("bad response")

// ErrUntrustedCH is matched (errors.Is) by every *UntrustedCHError.
var ErrUntrustedCH = errors.New("untrusted cluster head key")

// UntrustedCHError is returned when a cluster head answers /cluster under a
// key the device does not trust: not the key it kept from its first join
// (trust on first use), or not the pinned one. The device signs and sends
// nothing to that CH. Until the protocol has a CH key rotation signed by the
// old key, the way to another key is an explicit re-pin (WithRepin) after
// checking Got out of band.
type UntrustedCHError struct {
	Got     []byte // thumbprint of the key the CH answered under
	Trusted []byte // the thumbprint the device accepts
	Pinned  bool   // Trusted was configured (WithPin, WithRepin), not kept from a join
	// Chain says why the rotations the answer carried do not lead from
	// Trusted to Got (docs/PROTOCOL.md §6.1); nil when it carried none.
	Chain error
}

func (e *UntrustedCHError) Error() string {
	which := "the pinned"
	msg := fmt.Sprintf("%v: CH key thumbprint %x is not the pinned %x", ErrUntrustedCH, e.Got, e.Trusted)
	if !e.Pinned {
		which = "the trusted"
		msg = fmt.Sprintf("%v: CH key thumbprint %x is not %x, the key this device trusts since its first join", ErrUntrustedCH, e.Got, e.Trusted)
	}
	if e.Chain != nil {
		msg += fmt.Sprintf(", and no rotation signed by %s key leads to it (%v)", which, e.Chain)
	}
	if !e.Pinned {
		msg += "; if the CH key really changed, check the new thumbprint out of band and re-pin the device"
	}
	return msg
}

// Is reports whether target is ErrUntrustedCH.
func (e *UntrustedCHError) Is(target error) bool { return target == ErrUntrustedCH }

// ErrNotInLog is returned by CheckJoin (and Join) when the CH's
// transparency log does not prove the device's join: the proof or its
// checkpoint does not verify, it proves another block than the join answer
// named, or the log forked from the checkpoint the device kept (then the
// error also holds a *transparency.ForkError). The membership stands — the
// CH did answer the join — but the CH is not keeping the log it signs.
var ErrNotInLog = errors.New("join not proven in the CH's log")

// ErrNoLog is returned by CheckJoin when the CH answers that it keeps no
// transparency log (a ledger backend without one). Join then skips the
// check.
var ErrNoLog = errors.New("cluster head keeps no transparency log")

// ErrWarning is matched (errors.Is) by every *Warning.
var ErrWarning = errors.New("warning")

// Warning is the error of a /verify whose verdict is not member, and of a
// peer that refused to talk because its CH warned about this device
// (docs/PROTOCOL.md §4.3, §5.1). errors.Is(err, ErrWarning) holds for it.
type Warning struct {
	Peer string // the device the warning is about, or the peer that refused
	// Status is the verdict of a /verify; membership.Unknown for a refusal
	// to talk, whose reason is in Detail.
	Status membership.Status
	Detail string // a refusing peer's diagnostic
}

func (w *Warning) Error() string {
	if w.Detail != "" {
		return fmt.Sprintf("warning: peer %s refused: 4.03 %s", w.Peer, w.Detail)
	}
	return fmt.Sprintf("warning: %s is %s", w.Peer, w.Status)
}

// Is reports whether target is ErrWarning.
func (w *Warning) Is(target error) bool { return target == ErrWarning }

// ErrReplay is returned when an M2M message repeats or is too old.
var ErrReplay = errors.New("replayed message")

// CodeError is a CoAP error response: its code and diagnostic payload.
// Sealed says the CH sealed the diagnostic for the request it refuses
// (PROTOCOL.md §4.1): the refusal is the CH's. A device acts on a refusal,
// e.g. rejoins on "not a member", only when it is sealed; any other CoAP
// error may have been forged on the path.
type CodeError struct {
	Code       codes.Code
	Diagnostic string
	Sealed     bool
}

func (e *CodeError) Error() string {
	return fmt.Sprintf("%s %s", codeString(e.Code), e.Diagnostic)
}

// printable returns diag with every rune that is not printable (a terminal's
// escape sequences, invalid UTF-8) replaced by U+FFFD: a diagnostic comes
// from the network, and the CLI prints it.
func printable(diag string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return unicode.ReplacementChar
	}, strings.ToValidUTF8(diag, string(unicode.ReplacementChar)))
}

// codeString renders a code as CoAP writes it, e.g. "4.03".
func codeString(c codes.Code) string { return fmt.Sprintf("%d.%02d", c>>5, c&0x1f) }

// ErrTalkProofRefused is matched (errors.Is) by the error of a Talk whose
// hello the peer, or the peer's CH, refused for its talk proof: missing, for
// another responder, stale, replayed or not verifying (4.01,
// docs/PROTOCOL.md §5.1). The error also wraps the peer's *CodeError.
var ErrTalkProofRefused = errors.New("talk proof refused")
