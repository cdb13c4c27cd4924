package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// Tree is what the core needs of a ledger to serve checkpoints and proofs
// (docs/PROTOCOL.md §9); *ledger.Bolt implements it. A ledger without it has
// no transparency resources (ErrNoLog).
type Tree interface {
	TreeHead() (ledger.TreeHead, error)
	TreeRoot(size uint64) ([32]byte, error)
	InclusionProof(index, size uint64) ([][32]byte, error)
	ConsistencyProof(size1, size2 uint64) ([][32]byte, error)
	Blocks(from uint64, fn func(ledger.Block) error) error
}

// ProofRequest names the block GET /ledger/proof proves: the latest join
// block of ID, or else the block at Height; From, if not 0, is a tree size
// the client holds a checkpoint of, to be proven a prefix of the answer's.
type ProofRequest struct {
	ID     string
	Height uint64
	From   uint64
}

// checkpoints keeps the newest signed checkpoint, so that the CH signs at
// most one per tree size however many clients ask: an unauthenticated GET
// costs a signature only when the ledger has grown since the last one, and
// under a join load that is one per block (group commit), not one per join.
type checkpoints struct {
	mu     sync.Mutex
	head   ledger.TreeHead
	signed []byte
}

// tree returns the ledger's tree, or ErrNoLog.
func (c *Core) tree() (Tree, error) {
	t, ok := c.ledger.(Tree)
	if !ok {
		return nil, ErrNoLog
	}
	return t, nil
}

// latest returns the signed checkpoint of the whole ledger now.
func (c *Core) latest() ([]byte, ledger.TreeHead, error) {
	t, err := c.tree()
	if err != nil {
		return nil, ledger.TreeHead{}, err
	}
	th, err := t.TreeHead()
	if errors.Is(err, ledger.ErrNoTree) {
		return nil, ledger.TreeHead{}, ErrNoLog
	}
	if err != nil {
		return nil, ledger.TreeHead{}, fmt.Errorf("failed to read tree head: %w", err)
	}
	cp := &c.checkpoints
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.signed != nil && cp.head.Size >= th.Size {
		return cp.signed, cp.head, nil // another request signed this size, or a newer one, meanwhile
	}
	signed, err := transparency.SignCheckpoint(c.keys, c.cfg.ID, th.Size, th.Root, th.TimeMS)
	if err != nil {
		return nil, ledger.TreeHead{}, err
	}
	cp.head, cp.signed = th, signed
	return signed, th, nil
}

// Checkpoint returns the signed answer of GET /ledger/checkpoint: the
// checkpoint of the tree over every block committed so far (§9.1).
func (c *Core) Checkpoint() ([]byte, error) {
	signed, _, err := c.latest()
	return signed, err
}

// CheckpointText is GET /ledger/checkpoint for humans: the checkpoint's
// C2SP-style body and the thumbprint of the key that signs it.
func (c *Core) CheckpointText() (string, error) {
	_, th, err := c.latest()
	if err != nil {
		return "", err
	}
	thumb := c.keys.Thumbprint()
	return transparency.Text(c.cfg.ID, th.Size, th.Root, th.TimeMS) + fmt.Sprintf("key %x\n", thumb), nil
}

// Proof returns the answer of GET /ledger/proof (§9.2): the inclusion proof
// of the block req names in the latest checkpoint, and the consistency
// proof from req.From if asked. An ID no join has bound is ErrUnknownDevice;
// a height or From the tree does not have is ErrNotInLog.
func (c *Core) Proof(_ context.Context, req ProofRequest) ([]byte, error) {
	t, err := c.tree()
	if err != nil {
		return nil, err
	}
	var block ledger.BlockRef
	if req.ID != "" {
		d, err := c.ledger.Lookup(req.ID) // before the checkpoint: its tree holds the join block
		if err != nil {
			return nil, fmt.Errorf("failed to prove the join of %s: %w", req.ID, err)
		}
		block = d.Joined
	}
	signed, th, err := c.latest()
	if err != nil {
		return nil, err
	}
	if req.ID == "" {
		if block, err = c.blockRef(req.Height, th.Size); err != nil {
			return nil, err
		}
	}
	resp := wire.InclusionProof{Checkpoint: signed, Index: block.Height, BlockHash: block.Hash[:]}
	path, err := t.InclusionProof(block.Height, th.Size)
	if err != nil {
		return nil, notInLog(err, fmt.Sprintf("block %d (tree size %d)", block.Height, th.Size))
	}
	resp.Path = hashes(path)
	if req.From != 0 {
		cons, err := t.ConsistencyProof(req.From, th.Size)
		if err != nil {
			return nil, notInLog(err, fmt.Sprintf("tree size %d (the log has %d)", req.From, th.Size))
		}
		resp.OldSize, resp.Consistency = req.From, hashes(cons)
	}
	return wire.Marshal(&resp)
}

// Consistency returns the answer of GET /ledger/consistency (§9.3): the
// proof that the tree of the first from blocks, whose root it names, is a
// prefix of the latest checkpoint's.
func (c *Core) Consistency(_ context.Context, from uint64) ([]byte, error) {
	t, err := c.tree()
	if err != nil {
		return nil, err
	}
	signed, th, err := c.latest()
	if err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("tree size %d (the log has %d)", from, th.Size)
	path, err := t.ConsistencyProof(from, th.Size)
	if err != nil {
		return nil, notInLog(err, detail)
	}
	root, err := t.TreeRoot(from)
	if err != nil {
		return nil, notInLog(err, detail)
	}
	return wire.Marshal(&wire.ConsistencyProof{Checkpoint: signed, OldSize: from, OldRoot: root[:], Path: hashes(path)})
}

// blockRef returns the height and hash of the block at height, which must be
// in the tree of size blocks.
func (c *Core) blockRef(height, size uint64) (ledger.BlockRef, error) {
	if height >= size {
		return ledger.BlockRef{}, refuse(ErrNotInLog, fmt.Sprintf("block %d (tree size %d)", height, size))
	}
	var ref ledger.BlockRef
	errFound := errors.New("found")
	t, err := c.tree()
	if err != nil {
		return ledger.BlockRef{}, err
	}
	err = t.Blocks(height, func(b ledger.Block) error {
		h, err := b.Header.Hash()
		if err != nil {
			return err
		}
		ref = ledger.BlockRef{Height: b.Header.Height, Hash: h}
		return errFound
	})
	if !errors.Is(err, errFound) || ref.Height != height {
		return ledger.BlockRef{}, fmt.Errorf("failed to read block %d: %v", height, err)
	}
	return ref, nil
}

// notInLog maps the ledger's "no such size or leaf" to ErrNotInLog with
// detail for the client.
func notInLog(err error, detail string) error {
	if errors.Is(err, ledger.ErrTreeSize) {
		return refuse(ErrNotInLog, detail)
	}
	return err
}

func hashes(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
