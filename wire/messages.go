package wire

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/membership"
)

// The messages of docs/PROTOCOL.md, one struct each, CBOR maps with small
// integer keys. Decode them with Decode, which also runs Validate.

// Sizes fixed by the protocol.
const (
	NonceLen     = 16 // device and CH nonces, session IDs, Sk
	HashLen      = 32
	MaxEchoLen   = 40
	MaxMicroLat  = 90_000_000
	MaxMicroLon  = 180_000_000
	MaxPayload   = 1024 // largest request payload a CH accepts
	MaxPartialIV = 5    // bytes: sequence numbers stay below 2^40
)

// Validator is a message that can check its own fields after decoding.
type Validator interface{ Validate() error }

// Decode unmarshals b into v under the codec's limits and validates it.
func Decode(b []byte, v Validator) error {
	if err := Unmarshal(b, v); err != nil {
		return err
	}
	return v.Validate()
}

// JoinRequest is the payload of the device's signed /join (§3.2).
type JoinRequest struct {
	Cluster string          `cbor:"1,keyasint"`
	ID      string          `cbor:"2,keyasint"`
	Key     cbor.RawMessage `cbor:"3,keyasint"` // COSE_Key
	Lat     int64           `cbor:"4,keyasint"`
	Lon     int64           `cbor:"5,keyasint"`
	Nonce   []byte          `cbor:"6,keyasint"`
	Echo    []byte          `cbor:"7,keyasint,omitempty"`
	// Credential is a fleet credential (wire/credential.go), opaque here:
	// the CH parses it when its admission policy asks for one.
	Credential []byte `cbor:"8,keyasint,omitempty"`
}

// Validate checks field presence and ranges; it does not parse the key or
// the credential.
func (m *JoinRequest) Validate() error {
	return firstError(
		CheckID(m.Cluster), CheckID(m.ID),
		require(len(m.Key) > 0, "join key missing"),
		checkPosition(m.Lat, m.Lon),
		require(len(m.Nonce) == NonceLen, "join nonce must be 16 bytes"),
		checkEcho(m.Echo),
		require(m.Credential == nil || 1 <= len(m.Credential) && len(m.Credential) <= MaxCredentialLen,
			"credential must be 1-256 bytes"),
	)
}

// JoinResponse is the payload of the CH's signed answer to /join (§3.3).
type JoinResponse struct {
	Cluster     string          `cbor:"1,keyasint"`
	CHKey       cbor.RawMessage `cbor:"2,keyasint"`
	Thumbprint  []byte          `cbor:"3,keyasint"`
	ID          string          `cbor:"4,keyasint"`
	DeviceNonce []byte          `cbor:"5,keyasint"`
	CHNonce     []byte          `cbor:"6,keyasint"`
	Height      uint64          `cbor:"7,keyasint"`
	BlockHash   []byte          `cbor:"8,keyasint"`
	Expires     uint64          `cbor:"9,keyasint"`
}

func (m *JoinResponse) Validate() error {
	return firstError(
		CheckID(m.Cluster), CheckID(m.ID),
		require(len(m.CHKey) > 0, "CH key missing"),
		require(len(m.Thumbprint) == HashLen, "thumbprint must be 32 bytes"),
		require(len(m.DeviceNonce) == NonceLen && len(m.CHNonce) == NonceLen, "nonces must be 16 bytes"),
		require(len(m.BlockHash) == HashLen, "block hash must be 32 bytes"),
	)
}

// VerifyRequest asks the CH about a peer (§4.3).
type VerifyRequest struct {
	Peer string `cbor:"1,keyasint"`
	Echo []byte `cbor:"9,keyasint,omitempty"`
}

func (m *VerifyRequest) Validate() error {
	return firstError(CheckID(m.Peer), checkEcho(m.Echo))
}

// VerifyResponse is the CH's verdict on a peer. Anything but a verdict of
// membership.Member is a warning.
type VerifyResponse struct {
	Peer      string  `cbor:"1,keyasint"`
	Status    Verdict `cbor:"2,keyasint"`
	Height    uint64  `cbor:"3,keyasint,omitempty"`
	BlockHash []byte  `cbor:"4,keyasint,omitempty"`
	Expires   uint64  `cbor:"5,keyasint,omitempty"`
}

// Verdict is a membership.Status as /verify verdicts are numbered on the
// wire (docs/PROTOCOL.md §4.3): the index of the status in verdicts.
type Verdict uint8

// verdicts lists the statuses by verdict code. membership numbers unknown 0
// and member 1 (a stored status's zero value is unknown); the wire numbers
// them the other way round.
var verdicts = [...]membership.Status{membership.Member, membership.Unknown, membership.Left, membership.Revoked, membership.Expired}

// VerdictOf returns status s as a verdict: one Validate refuses if the wire
// has no code for s.
func VerdictOf(s membership.Status) Verdict {
	for code, st := range verdicts {
		if st == s {
			return Verdict(code)
		}
	}
	return Verdict(len(verdicts))
}

// Membership returns the status v stands for; a code past the table (which
// Validate refuses) as membership.Status(v).
func (v Verdict) Membership() membership.Status {
	if int(v) < len(verdicts) {
		return verdicts[v]
	}
	return membership.Status(v)
}

// Current reports whether v says member: not a warning.
func (v Verdict) Current() bool { return v.Membership().Current() }

func (v Verdict) String() string { return v.Membership().String() }

func (m *VerifyResponse) Validate() error {
	return firstError(CheckID(m.Peer), require(int(m.Status) < len(verdicts), "unknown verdict code"),
		require(m.BlockHash == nil || len(m.BlockHash) == HashLen, "block hash must be 32 bytes"))
}

// SessionRequest asks the CH for a session key with a peer (§4.3). M2
// forwards the initiator's talk proof in it when M1 asked it to talk (§5.1).
type SessionRequest struct {
	Peer  string     `cbor:"1,keyasint"`
	Proof *TalkProof `cbor:"2,keyasint,omitempty"`
	Echo  []byte     `cbor:"9,keyasint,omitempty"`
}

func (m *SessionRequest) Validate() error {
	return firstError(CheckID(m.Peer), m.Proof.validate(), checkEcho(m.Echo))
}

// SessionResponse is either the session — Sk sealed once for each party —
// or, only to a request carrying a talk proof, the warning verdict on an
// initiator that proved its identity but is not a current member (§4.3).
type SessionResponse struct {
	Grant   *Ticket         `cbor:"1,keyasint,omitempty"` // for the requester (M2)
	Ticket  *Ticket         `cbor:"2,keyasint,omitempty"` // for the peer (M1)
	Warning *VerifyResponse `cbor:"3,keyasint,omitempty"` // instead of both
}

func (m *SessionResponse) Validate() error {
	if m.Warning != nil {
		return firstError(require(m.Grant == nil && m.Ticket == nil, "a session warning carries no ticket"),
			m.Warning.Validate(), require(!m.Warning.Status.Current(), "a session warning must not say member"))
	}
	if m.Grant == nil || m.Ticket == nil {
		return require(false, "session grant and ticket missing")
	}
	return firstError(m.Grant.Validate(), m.Ticket.Validate())
}

// LeaveRequest ends the sender's membership.
type LeaveRequest struct {
	Echo []byte `cbor:"9,keyasint,omitempty"`
}

func (m *LeaveRequest) Validate() error {
	return checkEcho(m.Echo)
}

// LeaveResponse names the block holding the leave event.
type LeaveResponse struct {
	Height    uint64 `cbor:"1,keyasint"`
	BlockHash []byte `cbor:"2,keyasint"`
}

func (m *LeaveResponse) Validate() error {
	return require(len(m.BlockHash) == HashLen, "block hash must be 32 bytes")
}

// Ticket is Sk sealed by the CH to one member of a session (§4.4).
type Ticket struct {
	SID       []byte   `cbor:"1,keyasint"`
	Expires   uint64   `cbor:"2,keyasint"`
	Initiator string   `cbor:"3,keyasint"` // M1
	Responder string   `cbor:"4,keyasint"` // M2
	Recipient string   `cbor:"5,keyasint"`
	Box       Encrypt0 `cbor:"6,keyasint"`
}

func (m *Ticket) Validate() error {
	return firstError(
		require(len(m.SID) == NonceLen, "session ID must be 16 bytes"),
		CheckID(m.Initiator), CheckID(m.Responder), CheckID(m.Recipient),
		require(m.Recipient == m.Initiator || m.Recipient == m.Responder, "ticket recipient is not a party"),
		require(string(m.Box.Protected) == string(protectedA128GCM), "ticket box must be AES-128-GCM"),
		require(len(m.Box.Unprotected.IV) == NonceSize, "ticket IV must be 12 bytes"),
		require(len(m.Box.Ciphertext) == NonceLen+TagSize, "ticket must seal a 16-byte key"),
	)
}

// ClusterInfo is what GET /cluster answers, signed by the CH (§6).
type ClusterInfo struct {
	Cluster    string          `cbor:"1,keyasint"`
	Key        cbor.RawMessage `cbor:"2,keyasint"`
	Thumbprint []byte          `cbor:"3,keyasint"`
	Lat        int64           `cbor:"4,keyasint"`
	Lon        int64           `cbor:"5,keyasint"`
	Radius     uint64          `cbor:"6,keyasint"`
	// Rotations are the CH's latest key rotations (at most MaxRotations),
	// oldest first: each a COSE_Sign1 of a Rotation by the key it replaces;
	// the last one's new key is Key.
	Rotations [][]byte `cbor:"7,keyasint,omitempty"`
}

// MaxRotations bounds ClusterInfo.Rotations: each adds about 290 bytes, and
// the answer must stay one datagram a device can buffer (about 830 bytes
// with two). A device whose pin is older must be re-pinned out of band.
const MaxRotations = 2

func (m *ClusterInfo) Validate() error {
	return firstError(CheckID(m.Cluster), require(len(m.Key) > 0, "key missing"),
		require(len(m.Thumbprint) == HashLen, "thumbprint must be 32 bytes"), checkPosition(m.Lat, m.Lon),
		require(len(m.Rotations) <= MaxRotations, "too many rotations"))
}

// Rotation is a CH key rotation (§6.1): the payload of a COSE_Sign1 by the
// old key (kid = its thumbprint, external AAD AADRotation). The ledger
// records it in a rotate event, in a block signed by the new key.
type Rotation struct {
	Cluster string          `cbor:"1,keyasint"`
	Old     cbor.RawMessage `cbor:"2,keyasint"` // COSE_Key
	New     cbor.RawMessage `cbor:"3,keyasint"` // COSE_Key
	Time    uint64          `cbor:"4,keyasint"` // unix seconds
}

func (m *Rotation) Validate() error {
	return firstError(CheckID(m.Cluster), require(len(m.Old) > 0 && len(m.New) > 0, "rotation keys missing"))
}

// LedgerHead is what GET /ledger/head answers, signed by the CH (§6).
type LedgerHead struct {
	Height uint64 `cbor:"1,keyasint"`
	Hash   []byte `cbor:"2,keyasint"`
	TimeMS uint64 `cbor:"3,keyasint"`
}

func (m *LedgerHead) Validate() error {
	return require(len(m.Hash) == HashLen, "head hash must be 32 bytes")
}

// Hello is M1's request to talk, sent to M2's /talk (§5.1). Responder and
// Proof come together; a hello without them decodes (it is the hello of an
// implementation that predates talk proofs) and is refused by the listener.
type Hello struct {
	ID        string     `cbor:"1,keyasint"`           // the initiator M1
	Responder string     `cbor:"2,keyasint,omitempty"` // M2
	Proof     *TalkProof `cbor:"3,keyasint,omitempty"`
}

func (m *Hello) Validate() error {
	if m.Proof == nil && m.Responder == "" {
		return CheckID(m.ID)
	}
	return firstError(CheckID(m.ID), CheckID(m.Responder), require(m.Proof != nil, "hello has a responder but no proof"),
		m.Proof.validate())
}

// TalkProof is an initiator's proof, in its hello, that it holds the member
// key of its latest join and asks this responder to talk now (§5.1): a fresh
// nonce, the time it was made and an AES-128-GCM tag under its talk key. A
// responder cannot check it; it forwards it to the CH in its /session.
type TalkProof struct {
	_     struct{} `cbor:",toarray"`
	Nonce []byte   // NonceSize bytes, random; the AES-GCM nonce
	Time  uint64   // unix seconds, the initiator's clock
	Tag   []byte   // TagSize bytes
}

// Validate checks the proof's field sizes.
func (p *TalkProof) Validate() error {
	return firstError(require(len(p.Nonce) == NonceSize, "talk proof nonce must be 12 bytes"),
		require(len(p.Tag) == TagSize, "talk proof tag must be 16 bytes"))
}

// validate is Validate for an optional proof: nil is valid.
func (p *TalkProof) validate() error {
	if p == nil {
		return nil
	}
	return p.Validate()
}

// TalkResponse is M2's answer to Hello: its ID and M1's ticket.
type TalkResponse struct {
	ID     string `cbor:"1,keyasint"`
	Ticket Ticket `cbor:"2,keyasint"`
}

func (m *TalkResponse) Validate() error { return firstError(CheckID(m.ID), m.Ticket.Validate()) }

// Refusal is the plaintext of a sealed refusal (§4.1): the diagnostic of the
// CH's refusal of a protected request, a CBOR text string.
type Refusal string

// MaxRefusal is the longest diagnostic a sealed refusal carries, in bytes.
const MaxRefusal = 128

func (r *Refusal) Validate() error {
	return require(len(*r) <= MaxRefusal, "refusal diagnostic over 128 bytes")
}

func checkEcho(e []byte) error {
	return require(e == nil || 1 <= len(e) && len(e) <= MaxEchoLen, "echo must be 1-40 bytes")
}

func checkPosition(lat, lon int64) error {
	return require(-MaxMicroLat <= lat && lat <= MaxMicroLat && -MaxMicroLon <= lon && lon <= MaxMicroLon,
		"position out of range")
}

func require(ok bool, what string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
