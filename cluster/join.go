package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

func isErr(err, target error) bool { return errors.Is(err, target) }

// JoinResult is the CH's signed answer to a join.
type JoinResult struct {
	Response []byte // COSE_Sign1 of wire.JoinResponse
	Created  bool   // a new block was written; false: a replay of the join on the ledger
}

// Join handles a /join payload (COSE_Sign1) from the client at addr
// (docs/PROTOCOL.md §3). On success the join is durably on the ledger before
// Join returns. Checks run cheapest first: shape, cluster, echo, signature,
// radius, then the ledger state machine.
func (c *Core) Join(ctx context.Context, payload []byte, addr string) (JoinResult, error) {
	res, reason, err := c.join(ctx, payload, addr)
	if err != nil && reason != "" {
		c.obs.JoinRejected(reason)
	}
	return res, err
}

func (c *Core) join(ctx context.Context, payload []byte, addr string) (JoinResult, string, error) {
	signed, err := wire.ParseSign1(payload)
	if err != nil {
		return JoinResult{}, "malformed", reject(ErrMalformed, "join is not a COSE_Sign1")
	}
	var req wire.JoinRequest
	if err := wire.Decode(signed.Payload, &req); err != nil {
		return JoinResult{}, "malformed", reject(ErrMalformed, "join payload")
	}
	if req.Cluster != c.cfg.ID {
		return JoinResult{}, "cluster", ErrUnknownCluster
	}
	now := c.cfg.Now()
	if !c.keys.EchoFresh(req.Echo, addr, now) {
		return JoinResult{}, "", &EchoRequired{Echo: c.keys.Echo(addr, now)}
	}
	pub, err := wire.ParsePublicKey(req.Key)
	if err != nil {
		return JoinResult{}, "malformed", reject(ErrMalformed, "join key")
	}
	if string(signed.KID) != req.ID {
		return JoinResult{}, "signature", ErrBadSignature
	}
	start := time.Now()
	err = signed.Verify(pub, wire.AADJoinRequest)
	c.obs.Crypto("verify", time.Since(start))
	if err != nil {
		return JoinResult{}, "signature", ErrBadSignature
	}
	if Distance(c.cfg.Position, Position{req.Lat, req.Lon}) > c.cfg.Radius {
		return JoinResult{}, "radius", ErrOutsideRadius
	}

	if d, err := c.ledger.Lookup(req.ID); err == nil {
		switch {
		case !bytes.Equal(d.Key, req.Key):
			return JoinResult{}, "conflict", ErrConflict
		case d.Status == ledger.StatusRevoked:
			return JoinResult{}, "revoked", ErrRevoked
		case d.Status == ledger.StatusMember && bytes.Equal(d.DeviceNonce, req.Nonce):
			res, err := c.joinResponse(d, false)
			return res, "", err
		}
	} else if !isErr(err, ledger.ErrUnknownDevice) {
		return JoinResult{}, "", fmt.Errorf("failed to look up %s: %w", req.ID, err)
	}

	chNonce, err := c.keys.Nonce()
	if err != nil {
		return JoinResult{}, "", err
	}
	ev := ledger.Event{
		Type: ledger.EventJoin, Device: req.ID, Time: now.UnixMilli(), Key: req.Key,
		DeviceNonce: req.Nonce, CHNonce: chNonce, Lat: req.Lat, Lon: req.Lon,
		Expires: now.Add(c.cfg.MemberTTL).Unix(), Request: payload,
	}
	_, err = c.append(ctx, ev)
	duplicate := isErr(err, ledger.ErrDuplicate) // a concurrent copy of this join won the race
	switch {
	case isErr(err, ledger.ErrConflict):
		return JoinResult{}, "conflict", ErrConflict
	case isErr(err, ledger.ErrRevoked):
		return JoinResult{}, "revoked", ErrRevoked
	case err != nil && !duplicate:
		return JoinResult{}, "", fmt.Errorf("failed to record join of %s: %w", req.ID, err)
	}
	d, err := c.ledger.Lookup(req.ID)
	if err != nil {
		return JoinResult{}, "", fmt.Errorf("failed to read back join of %s: %w", req.ID, err)
	}
	if !duplicate { // the copy that won the race started the window
		c.joined(d)
	}
	res, err := c.joinResponse(d, !duplicate)
	return res, "", err
}

// joinResponse signs the answer for the join recorded in d.
func (c *Core) joinResponse(d ledger.Device, created bool) (JoinResult, error) {
	thumb := c.keys.Thumbprint()
	b, err := wire.Marshal(&wire.JoinResponse{
		Cluster: c.cfg.ID, CHKey: c.keys.COSEKey(), Thumbprint: thumb[:], ID: d.ID,
		DeviceNonce: d.DeviceNonce, CHNonce: d.CHNonce,
		Height: d.Joined.Height, BlockHash: d.Joined.Hash[:], Expires: uint64(d.Expires),
	})
	if err != nil {
		return JoinResult{}, err
	}
	resp, err := c.keys.Sign1(wire.AADJoinResponse, b)
	if err != nil {
		return JoinResult{}, err
	}
	return JoinResult{Response: resp, Created: created}, nil
}
