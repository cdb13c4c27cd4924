package device

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// Clients of the CH's transparency log (docs/PROTOCOL.md §9): a device that
// checks its own join, and an auditor (Public) that holds the CH to every
// checkpoint it has seen.

// get sends GET path?query and reads the answer, answering the CH's
// address verification first if it asks (exchangeVerified): public answers
// are larger than their requests. A non-nil echo, one the CH made for this
// association, goes with the request, so that it is not asked.
func get(ctx context.Context, conn *client.Conn, echo []byte, path string, query ...string) (*response, error) {
	opts := make([]message.Option, len(query), len(query)+1)
	for i, q := range query {
		opts[i] = message.Option{ID: message.URIQuery, Value: []byte(q)}
	}
	if echo != nil {
		opts = append(opts, message.Option{ID: message.Echo, Value: echo})
	}
	r, err := exchangeVerified(ctx, conn, codes.GET, path, 0, nil, opts...)
	if err != nil {
		return nil, err
	}
	if !r.ok() {
		return nil, fmt.Errorf("GET %s: %w", path, r.err())
	}
	return r, nil
}

// Inclusion is a verified inclusion proof: block Index with hash BlockHash
// is in the tree Checkpoint states, by Path; when asked from an earlier tree
// size, Consistency proves that tree a prefix of it.
type Inclusion struct {
	Checkpoint  *transparency.Checkpoint
	Index       uint64
	BlockHash   [32]byte
	Path        [][]byte
	OldSize     uint64
	Consistency [][]byte
}

// Consistency is a verified consistency proof: the tree of OldSize blocks
// with root OldRoot is a prefix of the one Checkpoint states, by Path.
type Consistency struct {
	Checkpoint *transparency.Checkpoint
	OldSize    uint64
	OldRoot    [32]byte
	Path       [][]byte
}

// fetchProof asks GET /ledger/proof with query and checks the checkpoint
// under key (of cluster) and the inclusion path. The consistency path, if
// any, is the caller's to check: only it holds the old root.
func fetchProof(ctx context.Context, conn *client.Conn, echo []byte, key *ecdsa.PublicKey, cluster string, query ...string) (*Inclusion, error) {
	r, err := get(ctx, conn, echo, "/ledger/proof", query...)
	if err != nil {
		return nil, err
	}
	var p wire.InclusionProof
	if err := wire.Decode(r.body, &p); err != nil {
		return nil, fmt.Errorf("%w: /ledger/proof: %v", ErrBadResponse, err)
	}
	cp, err := transparency.OpenCheckpoint(p.Checkpoint, key, cluster)
	if err != nil {
		return nil, fmt.Errorf("%w: /ledger/proof: %w", ErrBadResponse, err)
	}
	in := &Inclusion{Checkpoint: cp, Index: p.Index, BlockHash: [32]byte(p.BlockHash), Path: p.Path, OldSize: p.OldSize, Consistency: p.Consistency}
	if err := transparency.VerifyInclusion(cp, in.Index, in.BlockHash, in.Path); err != nil {
		return nil, fmt.Errorf("%w: /ledger/proof: %w", ErrBadResponse, err)
	}
	return in, nil
}

// CheckJoin proves this device's latest join to be in the CH's log: it asks
// GET /ledger/proof for its own ID (and, when it keeps a checkpoint from an
// earlier check, a consistency proof from that one), and checks that the
// answer's checkpoint is signed by the CH key of its membership, that the
// block proven is the one the CH's signed join answer named, that the path
// leads to the checkpoint's root, and that the log is an extension of the one
// it saw before. Then it keeps the new checkpoint (in the state file). A
// checkpoint kept from before a CH key rotation is the log's as well
// (FollowKept): the device then also reads GET /cluster for the rotations.
//
// A failure wraps ErrNotInLog (the CH answered, but its log does not prove
// the join, or forked: a *transparency.ForkError holds both checkpoints) or
// is the exchange's error. Join calls it; it costs one exchange and one
// signature check.
func (d *Device) CheckJoin(ctx context.Context) (*Inclusion, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.checkJoin(ctx, nil)
}

// checkJoin is CheckJoin, with info the /cluster answer the caller read
// (checked by checkCH) if any. Must be called with d.mu held.
func (d *Device) checkJoin(ctx context.Context, info *wire.ClusterInfo) (*Inclusion, error) {
	m := d.st.Membership
	if m == nil {
		return nil, ErrNotJoined
	}
	key, err := wire.ParsePublicKey(m.CHKey)
	if err != nil {
		return nil, fmt.Errorf("failed to use stored CH key: %w", err)
	}
	w := &transparency.Witness{}
	query := []string{"id=" + d.st.ID}
	if d.st.Checkpoint != nil {
		if w, err = d.keptWitness(ctx, info, key); err != nil {
			return nil, fmt.Errorf("failed to use the stored checkpoint: %w", err)
		}
		query = append(query, "from="+strconv.FormatUint(w.Last.Size, 10))
	}
	conn, err := d.association()
	if err != nil {
		return nil, err
	}
	in, err := fetchProof(ctx, conn, d.echo, key, m.Cluster, query...)
	if err != nil {
		return nil, notInLog(err)
	}
	switch {
	case in.Index != m.Height || string(in.BlockHash[:]) != string(m.BlockHash):
		return nil, fmt.Errorf("%w: the log proves block %d (%x), the join answer named block %d (%x)",
			ErrNotInLog, in.Index, in.BlockHash[:8], m.Height, m.BlockHash[:min(8, len(m.BlockHash))])
	case w.Last != nil && in.OldSize != w.Last.Size:
		return nil, fmt.Errorf("%w: asked for consistency from tree size %d, got %d", ErrNotInLog, w.Last.Size, in.OldSize)
	}
	if err := w.Advance(in.Checkpoint, in.Consistency); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInLog, err)
	}
	return in, d.update(func() error { d.st.Checkpoint = w.Last.Signed; return nil })
}

// keptWitness returns the witness of the checkpoint the device keeps, ready
// for checkpoints of key, the CH key of its membership. A checkpoint of an
// older key (kept from before a rotation the device followed) is opened by
// FollowKept with info, or with a GET /cluster if info is nil. Must be
// called with d.mu held.
func (d *Device) keptWitness(ctx context.Context, info *wire.ClusterInfo, key *ecdsa.PublicKey) (*transparency.Witness, error) {
	m := d.st.Membership
	if kid, err := checkpointKID(d.st.Checkpoint); err == nil && kid == wire.Thumbprint(key) {
		cp, err := transparency.OpenCheckpoint(d.st.Checkpoint, key, m.Cluster)
		return &transparency.Witness{Last: cp}, err
	}
	if info == nil {
		var pub *ecdsa.PublicKey
		var err error
		if info, pub, _, err = d.clusterInfo(ctx); err != nil {
			return nil, err
		}
		if !pub.Equal(key) {
			return nil, fmt.Errorf("%w: /cluster offers CH key %x, the device's membership is of %x (hint: iotguard device rekey)",
				ErrBadResponse, wire.Thumbprint(pub), wire.Thumbprint(key))
		}
	}
	if info.Cluster != m.Cluster {
		return nil, fmt.Errorf("%w: /cluster is cluster %s, the device joined %s", ErrBadResponse, info.Cluster, m.Cluster)
	}
	return FollowKept(d.st.Checkpoint, info, key)
}

// checkpointKID returns the kid of a signed checkpoint: the thumbprint of
// the key it names, not yet checked.
func checkpointKID(signed []byte) ([32]byte, error) {
	s, err := wire.ParseSign1(signed)
	if err != nil {
		return [32]byte{}, fmt.Errorf("failed to read checkpoint: %w", err)
	}
	if len(s.KID) != 32 {
		return [32]byte{}, fmt.Errorf("%w: checkpoint kid is not a thumbprint", wire.ErrMalformed)
	}
	return [32]byte(s.KID), nil
}

// FollowKept returns the witness of kept, a signed checkpoint of the CH's
// log that a verifier kept from an earlier check, ready to advance to a
// checkpoint signed by pub, the CH key in force that the /cluster answer
// info carries (checked by the caller). A checkpoint of pub opens under pub.
// One of an older key (its kid) opens under that key only if the rotations
// info carries lead from it to pub, each signed by the key before it: the
// rule by which a device follows a CH key rotation (acceptKey, docs/PROTOCOL.md
// §6.1, §9.1); the witness then takes pub's checkpoints as the same log's.
// Otherwise it fails: *UntrustedCHError when no rotation from the kept key
// leads to pub (the key was replaced without one, or more rotations than
// /cluster carries happened since).
func FollowKept(kept []byte, info *wire.ClusterInfo, pub *ecdsa.PublicKey) (*transparency.Witness, error) {
	thumb := wire.Thumbprint(pub)
	kid, err := checkpointKID(kept)
	if err != nil {
		return nil, err
	}
	if kid == thumb {
		cp, err := transparency.OpenCheckpoint(kept, pub, info.Cluster)
		if err != nil {
			return nil, err
		}
		return &transparency.Witness{Last: cp}, nil
	}
	old, err := acceptKey(kid[:], false, info, thumb) // the key that signed the checkpoint
	if err != nil {
		return nil, fmt.Errorf("checkpoint of key %x: %w", kid, err)
	}
	cp, err := transparency.OpenCheckpoint(kept, old, info.Cluster)
	if err != nil {
		return nil, err
	}
	w := &transparency.Witness{Last: cp}
	w.FollowRotation(thumb)
	return w, nil
}

// notInLog marks a bad answer of the log as ErrNotInLog, and the CH's
// answer that it keeps no log as ErrNoLog.
func notInLog(err error) error {
	var ce *CodeError
	switch {
	case errors.Is(err, ErrBadResponse):
		return fmt.Errorf("%w: %w", ErrNotInLog, err)
	case errors.As(err, &ce) && ce.Code == codes.NotFound && strings.HasPrefix(ce.Diagnostic, "no transparency log"):
		return fmt.Errorf("%w: %w", ErrNoLog, err)
	}
	return err
}

// Public reads a CH's public resources with no device identity: the
// cluster's key, checkpoints and proofs. It is what an auditor uses.
type Public struct {
	conn *client.Conn
	pin  []byte
}

// DialPublic opens a CoAP/UDP association to the CH at server. With pin (a
// thumbprint), ClusterKey accepts only the CH key with that thumbprint.
func DialPublic(server string, pin []byte) (*Public, error) {
	conn, err := dial(strings.TrimSuffix(strings.TrimPrefix(server, "coap://"), "/"))
	if err != nil {
		return nil, fmt.Errorf("failed to reach cluster head %s: %w", server, err)
	}
	return &Public{conn: conn, pin: pin}, nil
}

// Close ends the association.
func (p *Public) Close() error { return p.conn.Close() }

// ClusterKey fetches GET /cluster and returns the cluster and its CH key,
// checked against the pin if there is one.
func (p *Public) ClusterKey(ctx context.Context) (*wire.ClusterInfo, *ecdsa.PublicKey, error) {
	info, pub, _, err := clusterInfo(ctx, p.conn, pinned(p.pin))
	return info, pub, err
}

// Admission reads the admission policy the CH announces in the text form of
// GET /cluster (its "admission" line; "" if it has none). The text is not
// signed: it tells a client what to expect, it grants nothing.
func (p *Public) Admission(ctx context.Context) (string, error) {
	var accept [2]byte
	n, err := message.EncodeUint32(accept[:], uint32(message.TextPlain))
	if err != nil {
		return "", err
	}
	r, err := exchangeVerified(ctx, p.conn, codes.GET, "/cluster", 0, nil, message.Option{ID: message.Accept, Value: accept[:n]})
	if err != nil {
		return "", err
	}
	if !r.ok() {
		return "", fmt.Errorf("GET /cluster: %w", r.err())
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if a, ok := strings.CutPrefix(line, "admission "); ok {
			return a, nil
		}
	}
	return "", nil
}

// Checkpoint fetches GET /ledger/checkpoint and verifies it under key.
func (p *Public) Checkpoint(ctx context.Context, key *ecdsa.PublicKey, cluster string) (*transparency.Checkpoint, error) {
	r, err := get(ctx, p.conn, nil, "/ledger/checkpoint")
	if err != nil {
		return nil, err
	}
	cp, err := transparency.OpenCheckpoint(r.body, key, cluster)
	if err != nil {
		return nil, fmt.Errorf("%w: /ledger/checkpoint: %w", ErrBadResponse, err)
	}
	return cp, nil
}

// Proof fetches and verifies the inclusion proof of the latest join of id
// (or, with id "", of the block at height) in the latest checkpoint.
func (p *Public) Proof(ctx context.Context, key *ecdsa.PublicKey, cluster, id string, height uint64) (*Inclusion, error) {
	q := "height=" + strconv.FormatUint(height, 10)
	if id != "" {
		q = "id=" + id
	}
	return fetchProof(ctx, p.conn, nil, key, cluster, q)
}

// Consistency fetches GET /ledger/consistency?from=from and verifies it:
// the checkpoint under key, and the path from the old root it names to the
// checkpoint's root. The old root is the CH's word until checked against a
// checkpoint of that size the caller kept (transparency.Witness does).
func (p *Public) Consistency(ctx context.Context, key *ecdsa.PublicKey, cluster string, from uint64) (*Consistency, error) {
	out, err := p.ConsistencyUnverified(ctx, key, cluster, from)
	if err != nil {
		return nil, err
	}
	if err := transparency.VerifyConsistency(out.OldSize, out.OldRoot, out.Checkpoint, out.Path); err != nil {
		return nil, fmt.Errorf("%w: /ledger/consistency: %w", ErrBadResponse, err)
	}
	return out, nil
}

// ConsistencyUnverified is Consistency with the checkpoint verified but not
// the path: for an auditor that reports a path that does not verify as
// evidence of a fork.
func (p *Public) ConsistencyUnverified(ctx context.Context, key *ecdsa.PublicKey, cluster string, from uint64) (*Consistency, error) {
	r, err := get(ctx, p.conn, nil, "/ledger/consistency", "from="+strconv.FormatUint(from, 10))
	if err != nil {
		return nil, err
	}
	var c wire.ConsistencyProof
	if err := wire.Decode(r.body, &c); err != nil {
		return nil, fmt.Errorf("%w: /ledger/consistency: %v", ErrBadResponse, err)
	}
	cp, err := transparency.OpenCheckpoint(c.Checkpoint, key, cluster)
	if err != nil {
		return nil, fmt.Errorf("%w: /ledger/consistency: %w", ErrBadResponse, err)
	}
	out := &Consistency{Checkpoint: cp, OldSize: c.OldSize, OldRoot: [32]byte(c.OldRoot), Path: c.Path}
	if out.OldSize != from {
		return nil, fmt.Errorf("%w: /ledger/consistency answered from tree size %d, asked %d", ErrBadResponse, out.OldSize, from)
	}
	return out, nil
}
