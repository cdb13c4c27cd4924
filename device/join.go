package device

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// ClusterInfo fetches GET /cluster and checks its signature under the key it
// carries, and that the device may trust that key (*UntrustedCHError).
func (d *Device) ClusterInfo(ctx context.Context) (*wire.ClusterInfo, *ecdsa.PublicKey, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, pub, _, err := d.clusterInfo(ctx)
	return info, pub, err
}

// clusterInfo is ClusterInfo that also returns the echo value the answer
// carried, if any (docs/PROTOCOL.md §3.1). Must be called with d.mu held.
func (d *Device) clusterInfo(ctx context.Context) (*wire.ClusterInfo, *ecdsa.PublicKey, []byte, error) {
	conn, err := d.association()
	if err != nil {
		return nil, nil, nil, err
	}
	return clusterInfo(ctx, conn, d.checkCH)
}

// padded marks a request that exchange pads: a CH answers a padded GET
// /cluster at once, with an Echo for the join, instead of first challenging
// the device's address (docs/PROTOCOL.md §2): a join takes two round trips,
// not three.
var padded = message.Option{ID: coapedge.OptionPadding}

// clusterInfo fetches and checks GET /cluster on conn; trust says whether
// the key the answer is signed by, of that thumbprint, may be used.
func clusterInfo(ctx context.Context, conn *client.Conn, trust func(*wire.ClusterInfo, [32]byte) error) (*wire.ClusterInfo, *ecdsa.PublicKey, []byte, error) {
	r, err := exchangeVerified(ctx, conn, codes.GET, "/cluster", 0, nil, padded)
	if err != nil {
		return nil, nil, nil, err
	}
	if !r.ok() {
		return nil, nil, nil, r.err()
	}
	info, pub, err := verifiedClusters.verify(r.body)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: /cluster: %v", ErrBadResponse, err)
	}
	thumb := wire.Thumbprint(pub)
	if !bytes.Equal(info.Thumbprint, thumb[:]) {
		return nil, nil, nil, fmt.Errorf("%w: /cluster thumbprint does not match its key", ErrBadResponse)
	}
	if err := trust(info, thumb); err != nil {
		return nil, nil, nil, err
	}
	return info, pub, r.echo, nil
}

// verifiedClusters remembers /cluster answers this process has verified, by
// their bytes: the CH signs its answer once, so a device that joins again,
// or the many devices of a gateway, verify it once. Verifying the same bytes
// again could only give the same result; the thumbprint and pin checks still
// run for every answer.
var verifiedClusters = &clusterCache{m: map[[32]byte]clusterEntry{}}

// clusterCacheSize bounds verifiedClusters; it is emptied when full.
const clusterCacheSize = 64

type clusterEntry struct {
	info wire.ClusterInfo
	pub  *ecdsa.PublicKey
}

type clusterCache struct {
	mu sync.Mutex
	m  map[[32]byte]clusterEntry
}

// verify decodes and verifies a signed /cluster answer, or finds it verified.
func (c *clusterCache) verify(b []byte) (*wire.ClusterInfo, *ecdsa.PublicKey, error) {
	key := sha256.Sum256(b)
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		info := e.info
		return &info, e.pub, nil
	}
	var info wire.ClusterInfo
	pub, err := verifySelfSigned(b, wire.AADCluster, &info, func() []byte { return info.Key })
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if len(c.m) >= clusterCacheSize {
		clear(c.m)
	}
	c.m[key] = clusterEntry{info: info, pub: pub}
	c.mu.Unlock()
	return &info, pub, nil
}

// verifySelfSigned decodes a COSE_Sign1 whose payload carries the signer's
// COSE_Key (returned by key after decoding) and verifies it under that key.
func verifySelfSigned(b, aad []byte, payload wire.Validator, key func() []byte) (*ecdsa.PublicKey, error) {
	signed, err := wire.ParseSign1(b)
	if err != nil {
		return nil, err
	}
	if err := wire.Decode(signed.Payload, payload); err != nil {
		return nil, err
	}
	pub, err := wire.ParsePublicKey(key())
	if err != nil {
		return nil, err
	}
	if err := signed.Verify(pub, aad); err != nil {
		return nil, err
	}
	return pub, nil
}

// Join joins the cluster at position (lat, lon in microdegrees): it learns
// the cluster from GET /cluster, refuses a CH key it does not trust
// (*UntrustedCHError), sends a join signed over the echo value that answer
// carried (or answers the CH's echo challenge when it carried none, or when
// the CH found the join stale), checks the CH's signed answer, derives the
// member keys and keeps the CH key as the one it trusts. The join carries the
// device's fleet credential, if it has one.
//
// A CH whose ledger has not decided the join answers 5.03 "outcome not known
// yet" (one over its join rate, 5.03 "busy: too many joins"): Join then resends the very same signed join after the answer's
// Max-Age, at most maxJoinRetries times, signing a new echo into the same
// join (same nonce) if the CH challenges it again. A join that ends without
// an answer from the ledger stays in State.PendingJoin, and the next Join to
// that cluster sends it again (its nonce) rather than a new one: the CH
// answers a join it has already recorded with that record, so a retry is
// never recorded twice (docs/PROTOCOL.md §3.3). It returns an error matching
// ErrOutcomeUnknown while the outcome is not known. An answer whose
// membership has already expired by the device's clock is not a join
// (ErrBadResponse); the pending nonce is dropped.
//
// Then, unless the device was made WithoutLogCheck, it proves the join in the
// CH's transparency log (CheckJoin; skipped when the CH keeps none): an
// error wrapping ErrNotInLog comes with the response, and the membership,
// which the CH did grant.
func (d *Device) Join(ctx context.Context, lat, lon int64) (*wire.JoinResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	resp, info, err := d.join(ctx, lat, lon)
	if err != nil || d.noLogCheck {
		return resp, err
	}
	if _, err := d.checkJoin(ctx, info); err != nil && !errors.Is(err, ErrNoLog) {
		return resp, err
	}
	return resp, nil
}

// join is Join without the log check; it returns the /cluster answer the
// join went by as well. Must be called with d.mu held.
func (d *Device) join(ctx context.Context, lat, lon int64) (*wire.JoinResponse, *wire.ClusterInfo, error) {
	info, chPub, echo, err := d.clusterInfo(ctx)
	if err != nil {
		return nil, nil, err
	}
	keyBytes, err := wire.EncodePublicKey(&d.st.Key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	req := wire.JoinRequest{Cluster: info.Cluster, ID: d.st.ID, Key: keyBytes, Lat: lat, Lon: lon, Echo: echo,
		Credential: d.st.Credential}
	if d.credential != nil {
		req.Credential = d.credential
	}
	if p := d.st.PendingJoin; p != nil && p.Cluster == info.Cluster {
		req.Nonce = p.Nonce
	} else {
		req.Nonce = make([]byte, wire.NonceLen)
		if _, err := rand.Read(req.Nonce); err != nil {
			return nil, nil, fmt.Errorf("failed to draw join nonce: %w", err)
		}
		// Saved before it is sent: from then on, the join may be recorded.
		if err := d.update(func() error {
			d.st.PendingJoin = &PendingJoin{Cluster: info.Cluster, Nonce: req.Nonce}
			return nil
		}); err != nil {
			return nil, nil, err
		}
	}
	r, err := d.sendJoin(ctx, &req)
	switch {
	case err != nil:
		return nil, nil, err
	case r.code == codes.ServiceUnavailable:
		return nil, nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, r.err())
	case !r.ok():
		// Refused — or so says an answer nobody signed: a 4.09 may be
		// forged on the path while the CH recorded the join. The nonce
		// stays pending, and the next join sends it again: the CH answers
		// a recorded join with its record, and a refused one was never
		// recorded, so using its nonce again costs nothing.
		return nil, nil, r.err()
	}
	var resp wire.JoinResponse
	pub, err := verifySelfSigned(r.body, wire.AADJoinResponse, &resp, func() []byte { return resp.CHKey })
	if err != nil {
		return nil, nil, fmt.Errorf("%w: /join: %v", ErrBadResponse, err)
	}
	thumb := wire.Thumbprint(pub)
	switch {
	case !pub.Equal(chPub):
		return nil, nil, fmt.Errorf("%w: /join signed by another key than /cluster", ErrBadResponse)
	case resp.Cluster != info.Cluster || resp.ID != d.st.ID || !bytes.Equal(resp.DeviceNonce, req.Nonce):
		return nil, nil, fmt.Errorf("%w: /join answer is for another cluster, device or nonce", ErrBadResponse)
	case !bytes.Equal(resp.Thumbprint, thumb[:]):
		return nil, nil, fmt.Errorf("%w: /join thumbprint does not match the CH key", ErrBadResponse)
	}
	if now := d.now(); resp.Expires != 0 && now.Unix() >= 0 && uint64(now.Unix()) >= resp.Expires {
		// The CH answered the join it recorded for this nonce, and that
		// membership is over (or this device's clock is wrong): not
		// joined. The outcome is known, so the nonce is not pending any
		// more; the next Join draws a new one.
		if err := d.update(func() error { d.st.PendingJoin = nil; return nil }); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: /join answer's membership expired at %s (device clock %s); join again",
			ErrBadResponse, time.Unix(int64(resp.Expires), 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if kid, err := checkpointKID(d.st.Checkpoint); d.repin != nil && (err != nil || kid != thumb) {
		d.st.Checkpoint = nil // a re-pin: the checkpoint kept may be of another CH's log (after a rotation, checkJoin follows it)
	}
	d.st.Membership = &Membership{
		Cluster: resp.Cluster, CHKey: resp.CHKey, DeviceNonce: resp.DeviceNonce, CHNonce: resp.CHNonce,
		Height: resp.Height, BlockHash: resp.BlockHash, Expires: resp.Expires,
	}
	d.st.Trusted = thumb[:] // checkCH let only this key through: first use, the same, a rotation or the re-pin
	d.st.Seq, d.keys, d.st.PendingJoin = 0, nil, nil
	d.echo = req.Echo // the CH took it: made for this association
	if err := d.saveJoin(); err != nil {
		return nil, nil, err
	}
	return &resp, info, nil
}

// saveJoin saves the membership a join's answer just gave d.st, with its
// sequence numbers from 0 and no ticket remembered as used: no ticket sealed
// under an earlier member key opens under this one (docs/PROTOCOL.md §3.4).
// Unless the state file already holds that very membership: another process
// of this device sent the same pending join and had the answer first, and
// may have used the member key since; its sequence numbers and tickets are
// kept. Must be called with d.mu held.
func (d *Device) saveJoin() error {
	d.st.SpentTickets = SpentTickets{}
	if d.path == "" {
		return nil
	}
	return d.locked(func(onDisk *State) error {
		if m := onDisk.Membership; m != nil && bytes.Equal(m.DeviceNonce, d.st.Membership.DeviceNonce) &&
			bytes.Equal(m.CHNonce, d.st.Membership.CHNonce) {
			d.st.Seq, d.st.SpentTickets = onDisk.Seq, onDisk.SpentTickets
		}
		return d.save()
	})
}

// maxJoinRetries bounds how often Join resends a join that the CH answered
// 5.03. With the CH's 10 s wait and a Max-Age of 2 s, that is about a minute.
const maxJoinRetries = 4

// sendJoin signs req and sends it until an answer other than an echo
// challenge or a 5.03 arrives. It answers one echo challenge (RFC 9175), or
// one "stale join" (4.01 with an Echo option: PROTOCOL.md §3.1), by signing
// the echo into req; a second challenge in a row is returned. On a
// 5.03 it resends the same signed bytes after the answer's Max-Age, at most
// maxJoinRetries times, and returns the 5.03 when the retries or ctx's time
// would run out first.
func (d *Device) sendJoin(ctx context.Context, req *wire.JoinRequest) (*response, error) {
	signed, err := d.signJoin(req)
	if err != nil {
		return nil, err
	}
	challenged, retries := false, 0
	for {
		conn, err := d.association()
		if err != nil {
			return nil, err
		}
		r, err := exchange(ctx, conn, codes.POST, "/join", message.AppCoseSign1, signed)
		if err != nil { // the join may have arrived, and been recorded
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		switch {
		case r.code == codes.Unauthorized && r.echo != nil && !challenged: // "echo required", or "stale join": signed before the device's latest ledger event
			challenged = true
			req.Echo = r.echo
			if signed, err = d.signJoin(req); err != nil {
				return nil, err
			}
		case r.code == codes.ServiceUnavailable && retries < maxJoinRetries:
			retries++
			challenged = false // the echo may go stale while the ledger decides
			if !wait(ctx, r.maxAge) {
				return r, nil
			}
		default:
			return r, nil
		}
	}
}

// wait sleeps for d, unless ctx ends first or would end within d: it reports
// whether it slept.
func wait(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *Device) signJoin(req *wire.JoinRequest) ([]byte, error) {
	payload, err := wire.Marshal(req)
	if err != nil {
		return nil, err
	}
	return wire.Sign1(d.st.Key, []byte(d.st.ID), wire.AADJoinRequest, payload)
}

// memberKeys returns the keys derived from the current membership.
// Must be called with d.mu held.
func (d *Device) memberKeys() (*protect.MemberKeys, error) {
	if d.keys == nil {
		k, err := d.st.MemberKeys()
		if err != nil {
			return nil, err
		}
		d.keys = k
	}
	return d.keys, nil
}
