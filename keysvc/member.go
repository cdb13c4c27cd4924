package keysvc

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Member is what the CH knows of a member from the ledger index: enough to
// re-derive K_m at any time, and no secret.
type Member struct {
	ID          string
	Key         []byte // COSE_Key
	DeviceNonce []byte
	CHNonce     []byte
}

// memberEntry is a member's derived keys and what they were derived from.
type memberEntry struct {
	key, deviceNonce, chNonce string // COSE_Key and join nonces
	keys                      protect.MemberKeys
}

// memberKeys derives (or finds cached) the member's keys. An entry serves
// only the exact key and join nonces it was derived for, so a rejoin never
// sees the previous K_m; its derivation replaces the entry.
func (s *Service) memberKeys(m Member) (*protect.MemberKeys, error) {
	if e, ok := s.members.Get(m.ID); ok && e.deviceNonce == string(m.DeviceNonce) && e.chNonce == string(m.CHNonce) && e.key == string(m.Key) {
		return &e.keys, nil
	}
	pub, err := wire.ParsePublicKey(m.Key)
	if err != nil {
		return nil, fmt.Errorf("%w for %s: %v", ErrBadMemberKey, m.ID, err)
	}
	epub, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w for %s: %v", ErrBadMemberKey, m.ID, err)
	}
	start := time.Now()
	z, err := s.ecdhPriv.ECDH(epub)
	s.timed("ecdh", start)
	if err != nil {
		return nil, fmt.Errorf("failed ECDH with %s: %w", m.ID, err)
	}
	start = time.Now()
	km, err := protect.MemberKey(z, m.DeviceNonce, m.CHNonce, s.cluster, m.ID, s.thumb)
	if err != nil {
		return nil, err
	}
	e := &memberEntry{key: string(m.Key), deviceNonce: string(m.DeviceNonce), chNonce: string(m.CHNonce), keys: protect.DeriveMemberKeys(km)}
	s.timed("hkdf", start)
	s.members.Add(m.ID, e)
	return &e.keys, nil
}

// OpenRequest decrypts a protected request from member m at path. It does
// not check replay: the caller owns the member's window.
func (s *Service) OpenRequest(m Member, req *protect.Request, path string) ([]byte, error) {
	k, err := s.memberKeys(m)
	if err != nil {
		return nil, err
	}
	defer s.timed("aead_open", time.Now())
	return req.Open(k, s.cluster, path)
}

// SealResponse seals the answer to m's request req at path.
func (s *Service) SealResponse(m Member, req *protect.Request, path string, plaintext []byte) ([]byte, error) {
	k, err := s.memberKeys(m)
	if err != nil {
		return nil, err
	}
	defer s.timed("aead_seal", time.Now())
	return protect.SealResponse(k, s.cluster, req.KID, req.Seq, path, plaintext)
}

// Session is a granted session as the CH reports it: IDs and tickets, never Sk.
type Session struct {
	SID     []byte
	Expires time.Time
	Grant   wire.Ticket // Sk for the responder (the requester, M2)
	Ticket  wire.Ticket // Sk for the initiator (M1)
}

// IssueSession draws a one-time Sk and session ID for initiator m1 and
// responder m2 and seals Sk to each under its ticket key. Sk is dropped on
// return: the CH never stores it.
func (s *Service) IssueSession(m1, m2 Member, expires time.Time) (Session, error) {
	k1, err := s.memberKeys(m1)
	if err != nil {
		return Session{}, err
	}
	k2, err := s.memberKeys(m2)
	if err != nil {
		return Session{}, err
	}
	var sk [wire.KeySize]byte
	if _, err := rand.Read(sk[:]); err != nil {
		return Session{}, fmt.Errorf("failed to draw session key: %w", err)
	}
	defer clear(sk[:])
	sid, err := s.Nonce()
	if err != nil {
		return Session{}, err
	}
	defer s.timed("aead_seal", time.Now())
	base := wire.Ticket{SID: sid, Expires: uint64(expires.Unix()), Initiator: m1.ID, Responder: m2.ID}
	sess := Session{SID: sid, Expires: expires}
	base.Recipient = m2.ID
	if sess.Grant, err = protect.SealTicket(k2.Ticket, s.cluster, base, sk); err != nil {
		return Session{}, err
	}
	base.Recipient = m1.ID
	if sess.Ticket, err = protect.SealTicket(k1.Ticket, s.cluster, base, sk); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// PSK returns member m's DTLS pre-shared key (protect.MemberKeys.PSK).
// IMPORTANT: it is a secret derived from K_m; it leaves keysvc only for the
// DTLS handshake that needs it, never for a log or a file.
func (s *Service) PSK(m Member) ([]byte, error) {
	k, err := s.memberKeys(m)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(k.PSK[:]), nil
}
