package protect

import (
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// M2MMessage is a parsed, still sealed, device-to-device message (§5.2).
type M2MMessage struct {
	Sender string
	SID    []byte
	Seq    uint64
	msg    *wire.Encrypt0
}

// m2mAAD is the external AAD of a message from sender to receiver in
// session sid (§5.2).
func m2mAAD(sid []byte, sender, receiver string) wire.Tuple {
	return wire.NewTuple(4).Text("iotguard m2m").Bytes(sid).Text(sender).Text(receiver)
}

// SealM2M seals plaintext from sender to receiver in session sid as the
// sender's message number seq. IMPORTANT: seq must never repeat under k.
func SealM2M(k M2MKeys, sid []byte, sender, receiver string, seq uint64, plaintext []byte) ([]byte, error) {
	if seq > MaxSeq {
		return nil, fmt.Errorf("sequence number exhausted in session: start a new one")
	}
	aad := m2mAAD(sid, sender, receiver)
	hdr := wire.Encrypt0Header{KID: []byte(sender), PartialIV: EncodePartialIV(seq), KIDContext: sid}
	return wire.Seal(k.Key, Nonce(k.IV, seq), hdr, aad, plaintext)
}

// ParseM2M decodes an M2M message and its sender, session and sequence number.
func ParseM2M(b []byte) (*M2MMessage, error) {
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		return nil, err
	}
	sender := string(m.Unprotected.KID)
	if err := wire.CheckID(sender); err != nil {
		return nil, err
	}
	if len(m.Unprotected.KIDContext) != wire.NonceLen || m.Unprotected.IV != nil {
		return nil, fmt.Errorf("%w: M2M message needs a 16-byte session ID and no IV", wire.ErrMalformed)
	}
	seq, err := DecodePartialIV(m.Unprotected.PartialIV)
	if err != nil {
		return nil, err
	}
	return &M2MMessage{Sender: sender, SID: m.Unprotected.KIDContext, Seq: seq, msg: m}, nil
}

// Open decrypts m with the sender's keys k for receiver. It does not check replay.
func (m *M2MMessage) Open(k M2MKeys, receiver string) ([]byte, error) {
	return m.msg.Open(k.Key, Nonce(k.IV, m.Seq), m2mAAD(m.SID, m.Sender, receiver))
}
