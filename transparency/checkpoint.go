package transparency

import (
	"crypto/ecdsa"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/iotguard/iotguard/wire"
)

// Checkpoint is a signed checkpoint that verified: the tree over the first
// Size blocks of Cluster's ledger has root Root, as the key whose thumbprint
// is KID signed. Signed keeps the COSE_Sign1 exactly as received, so that it
// can be handed on as evidence.
type Checkpoint struct {
	Cluster string
	Size    uint64
	Root    [32]byte
	TimeMS  uint64
	KID     [32]byte
	Signed  []byte
}

// Signer makes a COSE_Sign1 over payload with external AAD aad under the CH
// key, kid = its thumbprint; *keysvc.Service implements it.
type Signer interface {
	Sign1(aad, payload []byte) ([]byte, error)
}

// SignCheckpoint returns the signed checkpoint (docs/PROTOCOL.md §9.1) of
// the tree of size blocks with root over cluster's ledger, whose newest
// block has time timeMS.
func SignCheckpoint(s Signer, cluster string, size uint64, root [32]byte, timeMS int64) ([]byte, error) {
	cp := wire.Checkpoint{Cluster: cluster, Size: size, Root: root[:], TimeMS: uint64(timeMS)}
	if err := cp.Validate(); err != nil {
		return nil, fmt.Errorf("failed to make checkpoint of tree size %d: %w", size, err)
	}
	b, err := wire.Marshal(&cp)
	if err != nil {
		return nil, err
	}
	signed, err := s.Sign1(wire.AADCheckpoint, b)
	if err != nil {
		return nil, fmt.Errorf("failed to sign checkpoint of tree size %d: %w", size, err)
	}
	return signed, nil
}

// OpenCheckpoint decodes a signed checkpoint and verifies it under key: its
// kid must be key's thumbprint (ErrWrongKey), its signature must verify
// (ErrBadCheckpoint), and, unless cluster is "", it must be of that cluster.
func OpenCheckpoint(signed []byte, key *ecdsa.PublicKey, cluster string) (*Checkpoint, error) {
	s, err := wire.ParseSign1(signed)
	if err != nil {
		return nil, fmt.Errorf("failed to read checkpoint: %w", err)
	}
	var cp wire.Checkpoint
	if err := wire.Decode(s.Payload, &cp); err != nil {
		return nil, fmt.Errorf("failed to read checkpoint: %w", err)
	}
	thumb := wire.Thumbprint(key)
	if string(s.KID) != string(thumb[:]) {
		return nil, fmt.Errorf("%w: checkpoint of tree size %d names key %x, not the CH key %x", ErrWrongKey, cp.Size, s.KID, thumb)
	}
	if err := s.Verify(key, wire.AADCheckpoint); err != nil {
		return nil, fmt.Errorf("%w: signature of checkpoint of tree size %d does not verify under the CH key %x", ErrBadCheckpoint, cp.Size, thumb)
	}
	if cluster != "" && cp.Cluster != cluster {
		return nil, fmt.Errorf("%w: checkpoint is of cluster %q, not %q", ErrBadCheckpoint, cp.Cluster, cluster)
	}
	return &Checkpoint{Cluster: cp.Cluster, Size: cp.Size, Root: [32]byte(cp.Root), TimeMS: cp.TimeMS, KID: thumb,
		Signed: append([]byte(nil), signed...)}, nil
}

// Text renders the checkpoint as a C2SP tlog-checkpoint body: origin (the
// cluster ID), tree size, base64 root, then one extension line with the
// time. docs/PROTOCOL.md §9.1.
func Text(cluster string, size uint64, root [32]byte, timeMS int64) string {
	return cluster + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root[:]) +
		"\ntime_ms " + strconv.FormatInt(timeMS, 10) + "\n"
}

// Text is the checkpoint's C2SP-style body (see the function Text).
func (c *Checkpoint) Text() string { return Text(c.Cluster, c.Size, c.Root, int64(c.TimeMS)) }
