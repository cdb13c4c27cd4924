package cluster

import (
	"context"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Protected handles a protected request (COSE_Encrypt0) at path — one of
// protect.PathVerify, PathSession, PathLeave — from the client at addr, and
// returns the protected response (docs/PROTOCOL.md §4).
//
// Order: parse; find the member; refuse non-members (after authenticating
// them); under the member's lock check the replay window, decrypt, mark the
// sequence number, then demand an echo if this process lost the member's
// window. Unauthenticated bytes never move a window.
func (c *Core) Protected(ctx context.Context, path string, payload []byte, addr string) ([]byte, error) {
	req, err := protect.ParseRequest(payload)
	if err != nil {
		return nil, reject(ErrMalformed, "protected request")
	}
	d, err := c.ledger.Lookup(req.KID)
	if isErr(err, ledger.ErrUnknownDevice) {
		return nil, ErrUnauthorized
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up %s: %w", req.KID, err)
	}
	m := member(d)
	if why := standing(d, c.cfg.Now()); why != "" {
		// Authenticate before answering, but keep no replay state: nothing
		// a non-member sends can change anything.
		if _, err := c.keys.OpenRequest(m, req, path); err != nil {
			return nil, ErrUnauthorized
		}
		return nil, reject(ErrNotMember, why)
	}
	plaintext, err := c.open(d, m, req, path, addr)
	if err != nil {
		return nil, err
	}
	var resp any
	switch path {
	case protect.PathVerify:
		resp, err = c.verify(ctx, d, plaintext)
	case protect.PathSession:
		resp, err = c.session(ctx, d, plaintext)
	case protect.PathLeave:
		resp, err = c.leave(ctx, d, plaintext)
	default:
		return nil, fmt.Errorf("no protected resource %q", path)
	}
	if err != nil {
		return nil, err
	}
	b, err := wire.Marshal(resp)
	if err != nil {
		return nil, err
	}
	return c.keys.SealResponse(m, req, path, b)
}

// echoOf returns the echo (key 9) any protected request may carry, or nil.
func echoOf(plaintext []byte) []byte {
	var fields map[int]cbor.RawMessage
	var echo []byte
	if wire.Unmarshal(plaintext, &fields) != nil || fields[9] == nil || wire.Unmarshal(fields[9], &echo) != nil {
		return nil
	}
	return echo
}

func (c *Core) open(d ledger.Device, m keysvc.Member, req *protect.Request, path, addr string) ([]byte, error) {
	s := c.state(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.window.Fresh(req.Seq) {
		return nil, ErrReplay
	}
	plaintext, err := c.keys.OpenRequest(m, req, path)
	if err != nil {
		return nil, ErrUnauthorized
	}
	s.window.Mark(req.Seq)
	if s.needsEcho {
		now := c.cfg.Now()
		if !c.keys.EchoFresh(echoOf(plaintext), addr, now) {
			return nil, &EchoRequired{Echo: c.keys.Echo(addr, now)}
		}
		s.needsEcho = false
		s.window.Restart(req.Seq) // what the member sent before this request is all older
	}
	return plaintext, nil
}

func (c *Core) verify(ctx context.Context, asker ledger.Device, plaintext []byte) (*wire.VerifyResponse, error) {
	var req wire.VerifyRequest
	if err := wire.Decode(plaintext, &req); err != nil {
		return nil, reject(ErrMalformed, "verify request")
	}
	resp := &wire.VerifyResponse{Peer: req.Peer}
	peer, err := c.ledger.Lookup(req.Peer)
	switch {
	case isErr(err, ledger.ErrUnknownDevice):
		resp.Status = wire.StatusUnknown
	case err != nil:
		return nil, fmt.Errorf("failed to look up %s: %w", req.Peer, err)
	default:
		resp.Height, resp.BlockHash, resp.Expires = peer.Joined.Height, peer.Joined.Hash[:], uint64(peer.Expires)
		resp.Status = statusOf(standing(peer, c.cfg.Now()))
	}
	if resp.Status != wire.StatusMember {
		reason := resp.Status.String()
		c.obs.VerifyWarning(reason)
		ev := ledger.Event{Type: ledger.EventVerifyWarning, Device: asker.ID, Peer: req.Peer, Time: c.cfg.Now().UnixMilli(), Reason: reason}
		if err := c.record(ctx, ev); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func statusOf(why string) wire.Status {
	switch why {
	case "":
		return wire.StatusMember
	case "left":
		return wire.StatusLeft
	case "revoked":
		return wire.StatusRevoked
	case "expired":
		return wire.StatusExpired
	}
	return wire.StatusUnknown
}

// session grants a session between the requester (M2, responder) and the
// peer it names (M1, initiator). The ledger records it behind the answer.
func (c *Core) session(ctx context.Context, m2 ledger.Device, plaintext []byte) (*wire.SessionResponse, error) {
	var req wire.SessionRequest
	if err := wire.Decode(plaintext, &req); err != nil {
		return nil, reject(ErrMalformed, "session request")
	}
	if req.Peer == m2.ID {
		return nil, reject(ErrPeerNotMember, "peer is the requester")
	}
	m1, err := c.ledger.Lookup(req.Peer)
	if isErr(err, ledger.ErrUnknownDevice) {
		return nil, reject(ErrPeerNotMember, "unknown")
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up %s: %w", req.Peer, err)
	}
	now := c.cfg.Now()
	if why := standing(m1, now); why != "" {
		return nil, reject(ErrPeerNotMember, why)
	}
	if m1.Cluster != "" && m1.Cluster != c.cfg.ID { // a shared ledger: verifiable here, but its K_m is with its own CH
		return nil, reject(ErrPeerNotMember, "member of cluster "+m1.Cluster)
	}
	sess, err := c.keys.IssueSession(member(m1), member(m2), now.Add(c.cfg.SessionTTL))
	if err != nil {
		return nil, err
	}
	ev := ledger.Event{Type: ledger.EventSession, Device: m2.ID, Peer: m1.ID, SessionID: sess.SID, Time: now.UnixMilli(), Expires: sess.Expires.Unix()}
	if err := c.record(ctx, ev); err != nil {
		return nil, err
	}
	c.obs.SessionGranted()
	return &wire.SessionResponse{Grant: sess.Grant, Ticket: sess.Ticket}, nil
}

func (c *Core) leave(ctx context.Context, d ledger.Device, plaintext []byte) (*wire.LeaveResponse, error) {
	var req wire.LeaveRequest
	if err := wire.Decode(plaintext, &req); err != nil {
		return nil, reject(ErrMalformed, "leave request")
	}
	ref, err := c.append(ctx, ledger.Event{Type: ledger.EventLeave, Device: d.ID, Time: c.cfg.Now().UnixMilli()})
	if isErr(err, ledger.ErrNotMember) {
		return nil, reject(ErrNotMember, "left")
	} else if err != nil {
		return nil, fmt.Errorf("failed to record leave of %s: %w", d.ID, err)
	}
	c.forget(d.ID)
	return &wire.LeaveResponse{Height: ref.Height, BlockHash: ref.Hash[:]}, nil
}
