package protect

import (
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

// Request is a parsed, still sealed, protected request (§4.1).
type Request struct {
	KID string // the sender's device ID
	Seq uint64 // the sender's sequence number
	msg *wire.Encrypt0
}

func requestAAD(cluster, kid string, seq uint64, path string) ([]byte, error) {
	return wire.Marshal([]any{"iotguard", cluster, []byte(kid), EncodePartialIV(seq), path})
}

// SealRequest seals plaintext as device id's request number seq to path.
// IMPORTANT: seq must never repeat under the same keys.
func SealRequest(k *MemberKeys, cluster, id string, seq uint64, path string, plaintext []byte) ([]byte, error) {
	if seq > MaxSeq {
		return nil, fmt.Errorf("sequence number exhausted for %s: rejoin", id)
	}
	aad, err := requestAAD(cluster, id, seq, path)
	if err != nil {
		return nil, err
	}
	hdr := wire.Encrypt0Header{KID: []byte(id), PartialIV: EncodePartialIV(seq)}
	return wire.Seal(k.Req, Nonce(k.IV, seq), hdr, aad, plaintext)
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

// Open decrypts r under the member's request key. It does not check replay.
func (r *Request) Open(k *MemberKeys, cluster, path string) ([]byte, error) {
	aad, err := requestAAD(cluster, r.KID, r.Seq, path)
	if err != nil {
		return nil, err
	}
	return r.msg.Open(k.Req, Nonce(k.IV, r.Seq), aad)
}

// SealResponse seals the CH's answer to request (kid, seq) at path with the
// member's response key, the request's nonce and AAD (§4.1).
func SealResponse(k *MemberKeys, cluster, kid string, seq uint64, path string, plaintext []byte) ([]byte, error) {
	aad, err := requestAAD(cluster, kid, seq, path)
	if err != nil {
		return nil, err
	}
	return wire.Seal(k.Resp, Nonce(k.IV, seq), wire.Encrypt0Header{}, aad, plaintext)
}

// OpenResponse decrypts the CH's answer to the device's request (id, seq) at path.
func OpenResponse(k *MemberKeys, cluster, id string, seq uint64, path string, b []byte) ([]byte, error) {
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		return nil, err
	}
	aad, err := requestAAD(cluster, id, seq, path)
	if err != nil {
		return nil, err
	}
	return m.Open(k.Resp, Nonce(k.IV, seq), aad)
}
