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
	Joined      uint64 // height of its join block: K_m is derived with the CH key in force there
}

// memberEntry is a member's derived keys and what they were derived from.
type memberEntry struct {
	key, deviceNonce, chNonce string   // COSE_Key and join nonces
	ch                        [32]byte // thumbprint of the CH key K_m was derived with
	keys                      protect.MemberKeys
}

// memberKeys derives (or finds cached) the member's keys. An entry serves
// only the exact key and join nonces it was derived for, so a rejoin never
// sees the previous K_m; its derivation replaces the entry.
func (s *Service) memberKeys(m Member) (*protect.MemberKeys, error) {
	return s.memberKeysWith(m, s.chFor(m))
}

// rekeyMark records that a member re-keyed to a newer CH key (§6.2), for
// its join with deviceNonce.
type rekeyMark struct {
	deviceNonce string
	thumb       [32]byte
}

// chFor returns the CH key m's K_m is derived with: the key in force at its
// join block, or the newer key it re-keyed to (seen by this process).
func (s *Service) chFor(m Member) *chKey {
	if v, ok := s.rekeyed.Load(m.ID); ok {
		if mk := v.(rekeyMark); mk.deviceNonce == string(m.DeviceNonce) {
			s.mu.RLock()
			defer s.mu.RUnlock()
			for _, k := range s.keys {
				if k.thumb == mk.thumb {
					return k
				}
			}
		}
	}
	return s.keyAt(m.Joined)
}

func (s *Service) memberKeysWith(m Member, ch *chKey) (*protect.MemberKeys, error) {
	if e, ok := s.members.Get(m.ID); ok && e.deviceNonce == string(m.DeviceNonce) && e.chNonce == string(m.CHNonce) && e.key == string(m.Key) && e.ch == ch.thumb {
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
	z, err := ch.ecdhPriv.ECDH(epub)
	s.timed("ecdh", start)
	if err != nil {
		return nil, fmt.Errorf("failed ECDH with %s: %w", m.ID, err)
	}
	start = time.Now()
	km, err := protect.MemberKey(z, m.DeviceNonce, m.CHNonce, s.cluster, m.ID, ch.thumb)
	if err != nil {
		return nil, err
	}
	e := &memberEntry{key: string(m.Key), deviceNonce: string(m.DeviceNonce), chNonce: string(m.CHNonce), ch: ch.thumb, keys: protect.DeriveMemberKeys(km)}
	s.timed("hkdf", start)
	s.members.Add(m.ID, e) // one entry per member: a re-keyed member's replaces its old one
	return &e.keys, nil
}

// OpenRequest decrypts a protected request from member m at path. It does
// not check replay: the caller owns the member's window.
//
// A member keyed to an older CH key (it joined before a rotation) may have
// re-keyed to the key in force (docs/PROTOCOL.md §6.2): a request that does
// not open under its old K_m is tried under the K_m of the key in force, and
// once one opens there, the member's old K_m is refused in this process.
func (s *Service) OpenRequest(m Member, req *protect.Request, path string) ([]byte, error) {
	ch := s.chFor(m)
	pt, err := s.openWith(m, ch, req, path)
	cur := s.current()
	if err == nil || ch == cur {
		return pt, err
	}
	if pt, err2 := s.openWith(m, cur, req, path); err2 == nil {
		s.rekeyed.Store(m.ID, rekeyMark{deviceNonce: string(m.DeviceNonce), thumb: cur.thumb})
		return pt, nil
	}
	return nil, err
}

func (s *Service) openWith(m Member, ch *chKey, req *protect.Request, path string) ([]byte, error) {
	k, err := s.memberKeysWith(m, ch)
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
	return req.SealResponse(k, s.cluster, path, plaintext)
}

// VerifyTalkProof checks that p is m's fresh talk proof, under the member
// key of m's latest join, of asking responder to talk (protect.VerifyTalkProof:
// protect.ErrStale, wire.ErrDecrypt). It holds whatever m's standing: the
// index keeps a left, revoked or expired member's join, so its proofs still
// authenticate it. It does not check replay: the caller remembers spent proofs.
func (s *Service) VerifyTalkProof(m Member, responder string, p *wire.TalkProof, now time.Time) error {
	k, err := s.memberKeys(m)
	if err != nil {
		return err
	}
	defer s.timed("aead_open", time.Now())
	return protect.VerifyTalkProof(k.Talk, s.cluster, m.ID, responder, p, now)
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
