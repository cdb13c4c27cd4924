package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// JoinResult is the CH's signed answer to a join.
type JoinResult struct {
	Response []byte // COSE_Sign1 of wire.JoinResponse
	Created  bool   // a new block was written; false: a replay of the join on the ledger
}

// Join handles a /join payload (COSE_Sign1) from the client at addr
// (docs/PROTOCOL.md §3). On success the join is durably on the ledger before
// Join returns. Checks run cheapest first: shape, cluster, echo, radius,
// what admission can decide without a signature (cluster/admission.go,
// screen), the join rate (Config.JoinRate: only a join that passed all of
// these takes one of its places), signature, then the rest of admission
// (a fleet credential's signature, the enrollment's terms);
// then the ledger's state machine decides whether the join applies
// (ErrConflict, ErrRevoked, ErrEnrollmentRemoved, ErrStale) or repeats the
// device's current join (answered again, nothing written). The join records
// the ledger height its echo was stamped with (ledger.Event.FreshAt); a stale
// join is refused with a fresh echo (an *EchoRequired whose Reason is
// ErrStale), which the device can sign and an attacker replaying its old join
// cannot.
func (c *Core) Join(ctx context.Context, payload []byte, addr string) (JoinResult, error) {
	signed, err := wire.ParseSign1(payload)
	if err != nil {
		return JoinResult{}, refuse(ErrMalformed, "join is not a COSE_Sign1")
	}
	var req wire.JoinRequest
	if err := wire.Decode(signed.Payload, &req); err != nil {
		return JoinResult{}, refuse(ErrMalformed, "join payload")
	}
	if req.Cluster != c.cfg.ID {
		return JoinResult{}, ErrUnknownCluster
	}
	now := c.cfg.Now()
	freshAt, fresh := c.keys.EchoFresh(req.Echo, addr, now)
	if !fresh {
		return JoinResult{}, &EchoRequired{Echo: c.echo(addr, now)}
	}
	pub, err := wire.ParsePublicKey(req.Key)
	if err != nil {
		return JoinResult{}, refuse(ErrMalformed, "join key")
	}
	if string(signed.KID) != req.ID {
		return JoinResult{}, ErrBadSignature
	}
	if Distance(c.cfg.Position, Position{req.Lat, req.Lon}) > c.cfg.Radius {
		return JoinResult{}, ErrOutsideRadius
	}
	admission, err := c.screen(&req, pub, now)
	if err != nil {
		return JoinResult{}, err
	}
	if c.joins != nil && !c.joins.take(addr, now) {
		return JoinResult{}, refuse(ErrJoinRate, "too many joins")
	}
	start := time.Now()
	err = signed.Verify(pub, wire.AADJoinRequest)
	c.obs.Crypto("verify", time.Since(start))
	if err != nil {
		return JoinResult{}, ErrBadSignature
	}
	if err := c.admit(&req, admission, now); err != nil {
		return JoinResult{}, err
	}
	chNonce, err := c.keys.Nonce()
	if err != nil {
		return JoinResult{}, err
	}
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	_, err = c.append(ctx, ledger.Event{
		Type: ledger.EventJoin, Device: req.ID, Time: now.UnixMilli(), Key: req.Key,
		DeviceNonce: req.Nonce, CHNonce: chNonce, Lat: req.Lat, Lon: req.Lon,
		Expires: now.Add(c.cfg.MemberTTL).Unix(), Request: payload, FreshAt: freshAt,
	})
	if errors.Is(err, ErrOtherCluster) {
		return JoinResult{}, c.otherCluster(req.ID, err)
	}
	created := err == nil
	if errors.Is(err, ledger.ErrUncertain) {
		c.leftUncertain(req.ID, chNonce)
	}
	if errors.Is(err, ledger.ErrStale) {
		return JoinResult{}, &EchoRequired{Echo: c.echo(addr, c.cfg.Now()), Reason: ErrStale}
	}
	if errors.Is(err, ledger.ErrBusy) { // nothing submitted: the same join may come again
		return JoinResult{}, refuse(ErrBusy, "ledger queue full")
	}
	if err != nil && !errors.Is(err, ledger.ErrDuplicate) {
		return JoinResult{}, fmt.Errorf("failed to record join of %s: %w", req.ID, err)
	}
	// A duplicate repeats the device's current join (a retry, or a copy that
	// lost a race): answer it again with the join on the ledger.
	d, err := c.ledger.Lookup(req.ID)
	if err != nil {
		return JoinResult{}, fmt.Errorf("failed to read back join of %s: %w", req.ID, err)
	}
	if ours := c.resolved(d); created || ours { // this copy, or one this process left uncertain, wrote the join
		c.joined(d)
	}
	return c.joinResponse(d, created)
}

// maxUncertainJoins bounds the devices whose uncertain joins are remembered,
// and maxUncertainTries the tries remembered for each; past them the oldest
// is forgotten, and if it was committed, its device's previous keys die only
// at its next join, leave or revoke.
const (
	maxUncertainJoins = 1024
	maxUncertainTries = 4
)

// leftUncertain remembers that this process's append of id's join with
// chNonce ended uncertain.
func (c *Core) leftUncertain(id string, chNonce []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tries, _ := c.uncertain.Get(id)
	if len(tries) == maxUncertainTries {
		tries = tries[1:]
	}
	c.uncertain.Add(id, append(slices.Clone(tries), chNonce))
}

// resolved reports whether d's join on the ledger is one whose append this
// process left uncertain (its CH nonce, drawn for that append, says so). The
// join on the ledger settles every earlier try of d's: they are forgotten.
func (c *Core) resolved(d ledger.Device) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tries, ok := c.uncertain.Get(d.ID)
	if !ok {
		return false
	}
	c.uncertain.Remove(d.ID)
	return slices.ContainsFunc(tries, func(n []byte) bool { return bytes.Equal(n, d.CHNonce) })
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

// otherCluster is the refusal of a join whose device is a current member of
// another cluster of a shared ledger (err, from the ledger): it names that
// cluster, as the ledger's record says.
func (c *Core) otherCluster(id string, err error) error {
	d, lerr := c.ledger.Lookup(id)
	if lerr != nil || d.Cluster == "" {
		return fmt.Errorf("failed to record join of %s: %w", id, err)
	}
	return refuse(ErrOtherCluster, d.Cluster)
}
