package keysvc

import (
	"bytes"
	"crypto/rand"
	"errors"
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

// cacheKey names a member's keys derived with one CH key: after a rotation a
// member has keys under the CH key of its join and under the key in force,
// and a request tried under both must not make one evict the other.
type cacheKey struct {
	id string
	ch [32]byte // thumbprint of the CH key K_m is derived with
}

// memberEntry is a member's derived keys and the join they were derived for.
type memberEntry struct {
	key, deviceNonce, chNonce string // COSE_Key and join nonces
	keys                      protect.MemberKeys
}

// serves reports whether e was derived for m's join: an entry serves only
// the exact key and join nonces it was derived for, so a rejoin never sees
// the previous K_m.
func (e *memberEntry) serves(m Member) bool {
	return e.key == string(m.Key) && e.deviceNonce == string(m.DeviceNonce) && e.chNonce == string(m.CHNonce)
}

// memberKeys returns m's keys under the CH key it is keyed to, for sealing
// to it: they enter only the unproven cache when derived.
func (s *Service) memberKeys(m Member) (*protect.MemberKeys, error) {
	e, err := s.keysFor(m, s.chFor(m))
	if err != nil {
		return nil, err
	}
	return &e.keys, nil
}

// chFor returns the CH key m's K_m is derived with: the key in force at its
// join block, or the newer key it re-keyed to (rekeys).
func (s *Service) chFor(m Member) *chKey {
	if mk, ok := s.rekeys.get(m.ID); ok && mk.chNonce == string(m.CHNonce) {
		if k := s.keyOf(mk.thumb); k != nil {
			return k
		}
	}
	return s.keyAt(m.Joined)
}

// keysFor returns m's keys derived with ch: cached, or derived now (one
// ECDH and an HKDF) into the unproven cache.
func (s *Service) keysFor(m Member, ch *chKey) (*memberEntry, error) {
	if e, _ := s.cached(m, cacheKey{id: m.ID, ch: ch.thumb}); e != nil {
		return e, nil
	}
	return s.derive(m, ch)
}

// cached returns m's keys named ck from either cache (nil if neither holds
// them for m's join), and whether they came from the cache of members in
// use.
func (s *Service) cached(m Member, ck cacheKey) (e *memberEntry, inUse bool) {
	if e, ok := s.members.Get(ck); ok && e.serves(m) {
		return e, true
	}
	if e, ok := s.unproven.Get(ck); ok && e.serves(m) {
		return e, false
	}
	return nil, false
}

// derive computes m's keys with ch, and keeps them in the unproven cache.
func (s *Service) derive(m Member, ch *chKey) (*memberEntry, error) {
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
	e := &memberEntry{key: string(m.Key), deviceNonce: string(m.DeviceNonce), chNonce: string(m.CHNonce), keys: protect.DeriveMemberKeys(km)}
	s.timed("hkdf", start)
	s.unproven.Add(cacheKey{id: m.ID, ch: ch.thumb}, e)
	return e, nil
}

// authenticate runs check, which fails with wire.ErrDecrypt on a message
// that does not authenticate, under m's keys: those of the CH key m is
// keyed to and, if that fails and a newer key is in force, those of the key
// in force (m may have re-keyed, docs/PROTOCOL.md §6.2). Once a message
// authenticates there, m is keyed to it and its old keys are refused, also
// after a restart: the re-key is recorded before the message is answered
// (ErrRekeyNotRecorded if it cannot be). Keys that pass check enter the
// cache of members in use; a failure costs at most two derivations and
// evicts nothing from it.
//
// Keys in neither cache are derived only while the budget of failed
// derivations (FailedDerivationRate) has a place, else the message is
// refused with ErrDerivationsBusy before any ECDH; each derivation for a
// message that then fails spends a place. Derivations in flight at once may
// each find the last place: the budget's overshoot is bounded by the
// requests served at once.
func (s *Service) authenticate(m Member, check func(*protect.MemberKeys) error) error {
	ch := s.chFor(m)
	derived, err := s.authenticateWith(m, ch, check)
	if cur := s.current(); errors.Is(err, wire.ErrDecrypt) && ch != cur {
		again, errCur := s.authenticateWith(m, cur, check)
		if errCur == nil {
			return s.rekeys.put(m.ID, rekeyMark{chNonce: string(m.CHNonce), thumb: cur.thumb})
		}
		derived += again
		if errors.Is(errCur, ErrDerivationsBusy) { // not tried under the key in force: come back
			err = errCur
		}
	}
	if err != nil {
		for range derived {
			s.failed.Allow()
		}
	}
	return err
}

// authenticateWith runs check under m's keys derived with ch, and says how
// many derivations it made (0 or 1).
func (s *Service) authenticateWith(m Member, ch *chKey, check func(*protect.MemberKeys) error) (derived int, err error) {
	ck := cacheKey{id: m.ID, ch: ch.thumb}
	e, inUse := s.cached(m, ck)
	if e == nil {
		if s.failed.Tokens() < 1 {
			return 0, ErrDerivationsBusy
		}
		if e, err = s.derive(m, ch); err != nil {
			return 1, err
		}
		derived = 1
	}
	if err := check(&e.keys); err != nil {
		return derived, err
	}
	if !inUse {
		s.members.Add(ck, e)
		s.unproven.Remove(ck)
	}
	return derived, nil
}

// OpenRequest decrypts a protected request from member m at path, under
// the K_m of the CH key m is keyed to or, for a member of an older key that
// re-keyed, of the key in force (authenticate). It does not check replay:
// the caller owns the member's window.
func (s *Service) OpenRequest(m Member, req *protect.Request, path string) ([]byte, error) {
	var pt []byte
	err := s.authenticate(m, func(k *protect.MemberKeys) (err error) {
		defer s.timed("aead_open", time.Now())
		pt, err = req.Open(k, s.cluster, path)
		return err
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
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

// SealRefusal seals diag, the diagnostic of the refusal of m's request req
// at path, which opened (protect.Request.SealRefusal).
func (s *Service) SealRefusal(m Member, req *protect.Request, path, diag string) ([]byte, error) {
	k, err := s.memberKeys(m)
	if err != nil {
		return nil, err
	}
	defer s.timed("aead_seal", time.Now())
	return req.SealRefusal(k, s.cluster, path, diag)
}

// VerifyTalkProof checks that p is m's fresh talk proof, under the member
// key of m's latest join, of asking responder to talk (protect.VerifyTalkProof:
// protect.ErrStale, wire.ErrDecrypt). Like OpenRequest it tries the K_m of
// the key in force for a member of an older key (authenticate): a talk
// proof alone shows that a member re-keyed, and its ticket is then sealed
// under its new K_m. It holds whatever m's standing: the index keeps
// a left, revoked or expired member's join, so its proofs still
// authenticate it. It does not check replay: the caller remembers spent
// proofs.
func (s *Service) VerifyTalkProof(m Member, responder string, p *wire.TalkProof, now time.Time) error {
	return s.authenticate(m, func(k *protect.MemberKeys) error {
		defer s.timed("aead_open", time.Now())
		return protect.VerifyTalkProof(k.Talk, s.cluster, m.ID, responder, p, now)
	})
}

// Session is a granted session as the CH reports it: IDs and tickets, never Sk.
type Session struct {
	SID     []byte
	Expires time.Time
	Grant   wire.Ticket // Sk for the responder (the requester, M2)
	Ticket  wire.Ticket // Sk for the initiator (M1)
}

// IssueSession draws a one-time Sk and session ID for initiator m1 and
// responder m2 and seals Sk to each under its ticket key: of its newer K_m
// if it re-keyed (a request or talk proof opened under it), else of its
// join's. Sk is dropped on return: the CH never stores it.
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
// DTLS handshake that needs it, never for a log or a file. Keys in neither
// cache are derived only within the budget of failed derivations
// (FailedDerivationRate), and always take a place of it: whether the client
// holds the PSK is known only once its handshake is over. Without a place,
// ErrDerivationsBusy, before any ECDH.
func (s *Service) PSK(m Member) ([]byte, error) {
	ch := s.chFor(m)
	e, _ := s.cached(m, cacheKey{id: m.ID, ch: ch.thumb})
	if e == nil {
		if !s.failed.Allow() {
			return nil, ErrDerivationsBusy
		}
		var err error
		if e, err = s.derive(m, ch); err != nil {
			return nil, err
		}
	}
	return bytes.Clone(e.keys.PSK[:]), nil
}
