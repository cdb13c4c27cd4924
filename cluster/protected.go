package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Verify handles /verify: the requester asks about a peer; any verdict but
// member is a warning, counted and recorded (docs/PROTOCOL.md §4.3).
func (c *Core) Verify(ctx context.Context, payload []byte, addr string) ([]byte, error) {
	return c.protected(ctx, protect.PathVerify, payload, addr, c.verify)
}

// Session handles /session: the requester (M2) asks for a session with the
// peer (M1) that asked it to talk (docs/PROTOCOL.md §4.4).
func (c *Core) Session(ctx context.Context, payload []byte, addr string) ([]byte, error) {
	return c.protected(ctx, protect.PathSession, payload, addr, c.session)
}

// Leave handles /leave: the requester ends its membership.
func (c *Core) Leave(ctx context.Context, payload []byte, addr string) ([]byte, error) {
	return c.protected(ctx, protect.PathLeave, payload, addr, c.leave)
}

// serveFunc serves the opened plaintext of a current member's request.
type serveFunc func(ctx context.Context, requester ledger.Device, plaintext []byte) (any, error)

// protected handles a protected request (COSE_Encrypt0) at path from the
// client at addr and returns the protected response (docs/PROTOCOL.md §4).
//
// Order: parse; find the member; authenticate; refuse non-members; then,
// under the member's lock, spend the sequence number in its replay window
// and demand an echo if this process lost the member's window.
// Unauthenticated bytes never make, move or evict a window. Once the
// request opened, a refusal is a *Sealed: only the member can open it.
func (c *Core) protected(ctx context.Context, path string, payload []byte, addr string, serve serveFunc) ([]byte, error) {
	req, err := protect.ParseRequest(payload)
	if err != nil {
		return nil, refuse(ErrMalformed, "protected request")
	}
	d, err := c.ledger.Lookup(req.KID)
	if errors.Is(err, ledger.ErrUnknownDevice) {
		return nil, ErrUnauthorized
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up %s: %w", req.KID, err)
	}
	m := member(d)
	plaintext, err := c.keys.OpenRequest(m, req, path)
	switch {
	case errors.Is(err, wire.ErrDecrypt), errors.Is(err, keysvc.ErrBadMemberKey):
		return nil, ErrUnauthorized
	case errors.Is(err, keysvc.ErrDerivationsBusy): // its keys are in no cache, and forgeries spent the derivations
		return nil, refuse(ErrBusy, "member keys")
	case err != nil: // e.g. keysvc.ErrRekeyNotRecorded: it authenticated, but cannot be answered yet
		return nil, fmt.Errorf("failed to open request of %s: %w", req.KID, err)
	}
	b, err := c.answer(ctx, d, req.Seq, plaintext, addr, serve)
	if err != nil {
		return nil, &Sealed{Err: err, Seal: func(diag string) ([]byte, error) {
			return c.keys.SealRefusal(m, req, path, diag)
		}}
	}
	return c.keys.SealResponse(m, req, path, b)
}

// answer serves the opened request seq of d: the plaintext of its answer, or
// why it is refused.
func (c *Core) answer(ctx context.Context, d ledger.Device, seq uint64, plaintext []byte, addr string, serve serveFunc) ([]byte, error) {
	now := c.cfg.Now()
	if err := c.current(d, now); err != nil {
		return nil, err // and no replay state: nothing a non-member sends can change anything
	}
	if err := c.fresh(d, seq, plaintext, addr, now); err != nil {
		return nil, err
	}
	resp, err := serve(ctx, d, plaintext)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(resp)
}

// current refuses d as a requester unless it is a current member of this
// cluster at now. On a ledger shared by several clusters (bftledger) a member
// of another cluster is visible here, and could even derive a member key
// under this CH's public key from its own join; it is a member there only.
func (c *Core) current(d ledger.Device, now time.Time) error {
	if s := d.StatusAt(now); !s.Current() {
		return refuse(ErrNotMember, s.String())
	}
	if !c.ours(d) {
		return refuse(ErrNotMember, "member of cluster "+d.Cluster)
	}
	return nil
}

// ours reports whether d's latest join was with this cluster: always on a
// ledger of one cluster, whose records name none.
func (c *Core) ours(d ledger.Device) bool { return d.Cluster == "" || d.Cluster == c.cfg.ID }

// echoOf returns the echo (key 9) any protected request may carry, or nil.
func echoOf(plaintext []byte) []byte {
	var fields map[int]cbor.RawMessage
	var echo []byte
	if wire.Unmarshal(plaintext, &fields) != nil || fields[9] == nil || wire.Unmarshal(fields[9], &echo) != nil {
		return nil
	}
	return echo
}

// fresh spends seq, of an authenticated request of d, in d's replay window:
// a seq seen before is ErrReplay. If this process lost d's window, the
// request must carry a fresh echo, and its seq becomes the window's floor;
// the challenged request's seq is spent too.
func (c *Core) fresh(d ledger.Device, seq uint64, plaintext []byte, addr string, now time.Time) error {
	s, err := c.state(d, now)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.window.Fresh(seq) {
		return ErrReplay
	}
	s.window.Mark(seq)
	if s.needsEcho {
		if _, fresh := c.keys.EchoFresh(echoOf(plaintext), addr, now); !fresh {
			return &EchoRequired{Echo: c.echo(addr, now)}
		}
		s.needsEcho = false
		s.window.Restart(seq) // what the member sent before this request is all older
	}
	return nil
}

func (c *Core) verify(ctx context.Context, asker ledger.Device, plaintext []byte) (any, error) {
	var req wire.VerifyRequest
	if err := wire.Decode(plaintext, &req); err != nil {
		return nil, refuse(ErrMalformed, "verify request")
	}
	now := c.cfg.Now()
	resp := &wire.VerifyResponse{Peer: req.Peer, Status: wire.VerdictOf(membership.Unknown)}
	peer, err := c.ledger.Lookup(req.Peer)
	switch {
	case errors.Is(err, ledger.ErrUnknownDevice):
	case err != nil:
		return nil, fmt.Errorf("failed to look up %s: %w", req.Peer, err)
	default:
		resp = verdict(peer, now)
	}
	if err := c.warn(asker, resp, now); err != nil {
		return nil, err
	}
	return resp, nil
}

// verdict is the answer about a known device at now.
func verdict(d ledger.Device, now time.Time) *wire.VerifyResponse {
	hash := d.Joined.Hash // a copy: slicing d's own array would move all of d to the heap
	return &wire.VerifyResponse{Peer: d.ID, Status: wire.VerdictOf(d.StatusAt(now)), Height: d.Joined.Height,
		BlockHash: hash[:], Expires: uint64(d.Expires)}
}

// warn counts, logs and records asker's warning verdict v; a member verdict
// is none of these. The log is bounded (a member may ask about unknown
// peers at will); the count and the record are exact. The record goes into
// the open batch of audit records (grants.go), committed behind the answer.
func (c *Core) warn(asker ledger.Device, v *wire.VerifyResponse, now time.Time) error {
	if v.Status.Current() {
		return nil
	}
	reason := v.Status.String()
	c.obs.VerifyWarning(reason)
	c.warnings.Log("warning verdict", "asker", asker.ID, "peer", v.Peer, "reason", reason)
	return c.grants.add(ledger.Event{Type: ledger.EventVerifyWarning, Device: asker.ID, Peer: v.Peer, Time: now.UnixMilli(), Reason: reason})
}

// session grants a session between the requester (M2, responder) and the
// peer it names (M1, initiator). With M1's talk proof, the proof is
// authenticated and spent first, and an M1 that proved its identity but is
// not a current member gets a warning verdict instead of a session. The
// ledger's state machine says whether the session may be granted; its
// record is written behind the answer.
func (c *Core) session(ctx context.Context, m2 ledger.Device, plaintext []byte) (any, error) {
	var req wire.SessionRequest
	if err := wire.Decode(plaintext, &req); err != nil {
		return nil, refuse(ErrMalformed, "session request")
	}
	if req.Peer == m2.ID {
		return nil, refuse(ErrPeerNotMember, "peer is the requester")
	}
	now := c.cfg.Now()
	if req.Proof != nil {
		m1, err := c.talkProof(m2, req.Peer, req.Proof, now)
		if err != nil {
			return nil, err
		}
		if v := verdict(m1, now); !v.Status.Current() {
			if err := c.warn(m2, v, now); err != nil {
				return nil, err
			}
			return &wire.SessionResponse{Warning: v}, nil
		}
	}
	ev := ledger.Event{Type: ledger.EventSession, Device: m2.ID, Peer: req.Peer, Time: now.UnixMilli()}
	if err := ledger.Check(c.ledger, ev); err != nil {
		var se *ledger.StatusError
		switch {
		case errors.As(err, &se) && se.ID == req.Peer:
			return nil, refuse(ErrPeerNotMember, se.Status.String())
		case errors.As(err, &se):
			return nil, refuse(ErrNotMember, se.Status.String())
		}
		return nil, fmt.Errorf("failed to check session of %s with %s: %w", m2.ID, req.Peer, err)
	}
	m1, err := c.ledger.Lookup(req.Peer)
	if err != nil {
		return nil, fmt.Errorf("failed to look up %s: %w", req.Peer, err)
	}
	if !c.ours(m1) { // a shared ledger: verifiable here, but its K_m is with its own CH
		return nil, refuse(ErrPeerNotMember, "member of cluster "+m1.Cluster)
	}
	sess, err := c.keys.IssueSession(member(m1), member(m2), now.Add(c.cfg.SessionTTL))
	if err != nil {
		return nil, err
	}
	ev.SessionID, ev.Expires = sess.SID, sess.Expires.Unix()
	if err := c.grants.add(ev); err != nil {
		return nil, err
	}
	c.obs.SessionGranted()
	return &wire.SessionResponse{Grant: &sess.Grant, Ticket: &sess.Ticket}, nil
}

func (c *Core) leave(ctx context.Context, d ledger.Device, plaintext []byte) (any, error) {
	var req wire.LeaveRequest
	if err := wire.Decode(plaintext, &req); err != nil {
		return nil, refuse(ErrMalformed, "leave request")
	}
	ref, err := c.append(ctx, ledger.Event{Type: ledger.EventLeave, Device: d.ID, Time: c.cfg.Now().UnixMilli()})
	var se *ledger.StatusError
	if errors.As(err, &se) {
		return nil, refuse(ErrNotMember, se.Status.String())
	} else if err != nil {
		return nil, fmt.Errorf("failed to record leave of %s: %w", d.ID, err)
	}
	c.forget(d.ID)
	return &wire.LeaveResponse{Height: ref.Height, BlockHash: ref.Hash[:]}, nil
}
