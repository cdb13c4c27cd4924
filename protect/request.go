package protect

import (
	"crypto/rand"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// Paths of the protected resources; each is bound into the AAD so a request
// sealed for one resource cannot be replayed at another.
const (
	PathVerify  = "verify"
	PathSession = "session"
	PathLeave   = "leave"
)

// Request is a parsed, still sealed, protected request (§4.1), used by the
// one goroutine that serves it.
type Request struct {
	KID string // the sender's device ID
	Seq uint64 // the sender's sequence number
	msg *wire.Encrypt0

	// aad is the AEAD's AAD for aadOf (cluster and path), made by the first
	// Open or SealResponse: the request and its answer share it.
	aad   wire.AAD
	aadOf [2]string
}

// requestAAD is the AEAD's AAD of request seq of device kid to path: the
// Enc_structure over the external AAD ["iotguard", cluster, kid (bytes),
// partial IV, path] (§4.1).
func requestAAD(cluster, kid string, seq uint64, path string) wire.AAD {
	return wire.NewAAD(wire.NewTuple(5).Text("iotguard").Text(cluster).Bytes([]byte(kid)).Bytes(EncodePartialIV(seq)).Text(path))
}

// Outgoing is a protected request as a device sealed it: its bytes, and
// what opens the CH's answer to it.
type Outgoing struct {
	Body []byte
	seq  uint64
	aad  wire.AAD
}

// Seal seals plaintext as device id's request number seq to path.
// IMPORTANT: seq must never repeat under the same keys.
func Seal(k *MemberKeys, cluster, id string, seq uint64, path string, plaintext []byte) (*Outgoing, error) {
	if seq > MaxSeq {
		return nil, fmt.Errorf("sequence number exhausted for %s: rejoin", id)
	}
	aad := requestAAD(cluster, id, seq, path)
	hdr := wire.Encrypt0Header{KID: []byte(id), PartialIV: EncodePartialIV(seq)}
	body, err := aad.Seal(k.Req, Nonce(k.IV, seq), hdr, plaintext)
	if err != nil {
		return nil, err
	}
	return &Outgoing{Body: body, seq: seq, aad: aad}, nil
}

// OpenResponse decrypts the CH's answer b to o.
func (o *Outgoing) OpenResponse(k *MemberKeys, b []byte) ([]byte, error) {
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		return nil, err
	}
	return o.aad.Open(m, k.Resp, Nonce(k.IV, o.seq))
}

// SealRequest is Seal, for callers that keep only the bytes.
func SealRequest(k *MemberKeys, cluster, id string, seq uint64, path string, plaintext []byte) ([]byte, error) {
	o, err := Seal(k, cluster, id, seq, path, plaintext)
	if err != nil {
		return nil, err
	}
	return o.Body, nil
}

// ParseRequest decodes a protected request and its kid and partial IV
// without decrypting it, so the CH can find the member's keys.
func ParseRequest(b []byte) (*Request, error) {
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		return nil, err
	}
	kid := string(m.Unprotected.KID)
	if err := wire.CheckID(kid); err != nil {
		return nil, err
	}
	if m.Unprotected.IV != nil || m.Unprotected.KIDContext != nil {
		return nil, fmt.Errorf("%w: unexpected header in protected request", wire.ErrMalformed)
	}
	seq, err := DecodePartialIV(m.Unprotected.PartialIV)
	if err != nil {
		return nil, err
	}
	return &Request{KID: kid, Seq: seq, msg: m}, nil
}

// additional returns r's AAD for cluster and path, made once.
func (r *Request) additional(cluster, path string) wire.AAD {
	if of := [2]string{cluster, path}; r.aadOf != of {
		r.aad, r.aadOf = requestAAD(cluster, r.KID, r.Seq, path), of
	}
	return r.aad
}

// Open decrypts r under the member's request key. It does not check replay.
func (r *Request) Open(k *MemberKeys, cluster, path string) ([]byte, error) {
	return r.additional(cluster, path).Open(r.msg, k.Req, Nonce(k.IV, r.Seq))
}

// SealResponse seals the CH's answer to r at path with the member's
// response key, the request's nonce and AAD (§4.1).
func (r *Request) SealResponse(k *MemberKeys, cluster, path string, plaintext []byte) ([]byte, error) {
	return r.additional(cluster, path).Seal(k.Resp, Nonce(k.IV, r.Seq), wire.Encrypt0Header{}, plaintext)
}

// SealResponse seals the CH's answer to request (kid, seq) at path.
func SealResponse(k *MemberKeys, cluster, kid string, seq uint64, path string, plaintext []byte) ([]byte, error) {
	return (&Request{KID: kid, Seq: seq}).SealResponse(k, cluster, path, plaintext)
}

// OpenResponse decrypts the CH's answer to the device's request (id, seq) at path.
func OpenResponse(k *MemberKeys, cluster, id string, seq uint64, path string, b []byte) ([]byte, error) {
	return (&Outgoing{seq: seq, aad: requestAAD(cluster, id, seq, path)}).OpenResponse(k, b)
}

// SealRefusal seals diag, the diagnostic of the CH's refusal of r at path,
// for the member (§4.1, "Sealed refusals"): a COSE_Encrypt0 under the
// response key with the request's AAD, a random IV in its unprotected header
// (the request's nonce belongs to the answer: a replayed request can be
// refused again, and must not reuse it), and the CBOR text string diag as
// its plaintext, which no answer is (every answer is a map). A device acts
// on a refusal, e.g. rejoins, only when it opens.
func (r *Request) SealRefusal(k *MemberKeys, cluster, path, diag string) ([]byte, error) {
	var iv [wire.NonceSize]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return nil, fmt.Errorf("failed to draw refusal IV: %w", err)
	}
	refusal := wire.Refusal(diag)
	if err := refusal.Validate(); err != nil {
		return nil, err
	}
	pt, err := wire.Marshal(refusal)
	if err != nil {
		return nil, err
	}
	return r.additional(cluster, path).Seal(k.Resp, iv, wire.Encrypt0Header{IV: iv[:]}, pt)
}

// OpenRefusal returns the diagnostic of the CH's sealed refusal b of o
// (Request.SealRefusal).
func (o *Outgoing) OpenRefusal(k *MemberKeys, b []byte) (string, error) {
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		return "", err
	}
	if len(m.Unprotected.IV) != wire.NonceSize || m.Unprotected.KID != nil || m.Unprotected.PartialIV != nil ||
		m.Unprotected.KIDContext != nil {
		return "", fmt.Errorf("%w: a sealed refusal's header is {5: IV}", wire.ErrMalformed)
	}
	pt, err := o.aad.Open(m, k.Resp, [wire.NonceSize]byte(m.Unprotected.IV))
	if err != nil {
		return "", err
	}
	var diag wire.Refusal
	if err := wire.Decode(pt, &diag); err != nil {
		return "", err
	}
	return string(diag), nil
}

// OpenRefusal returns the diagnostic of the CH's sealed refusal of the
// device's request (id, seq) at path.
func OpenRefusal(k *MemberKeys, cluster, id string, seq uint64, path string, b []byte) (string, error) {
	return (&Outgoing{seq: seq, aad: requestAAD(cluster, id, seq, path)}).OpenRefusal(k, b)
}
