package audit

import (
	"bufio"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// CH is what Export needs of the cluster head's key: its COSE_Key and
// checkpoint signatures; *keysvc.Service implements it.
type CH interface {
	transparency.Signer
	COSEKey() []byte
}

// Blocks is what Export reads: every block from genesis (a ledger.Ledger).
type Blocks interface {
	Head() (ledger.BlockRef, int64, error)
	Blocks(from uint64, fn func(ledger.Block) error) error
}

// Export writes the ledger l of cluster to w (docs/PROTOCOL.md §9.5): a
// header naming the cluster and the CH key, every block from genesis to the
// head as it is now, and a checkpoint over exactly those blocks, signed by
// ch. The tree is computed from the blocks written, not read from the
// store. progress, if not nil, hears the blocks written and the total.
func Export(w io.Writer, l Blocks, cluster string, ch CH, progress func(done, total uint64)) (*transparency.Checkpoint, error) {
	head, _, err := l.Head()
	if err != nil {
		return nil, fmt.Errorf("failed to export: %w", err)
	}
	total := head.Height + 1
	bw := bufio.NewWriter(w)
	hdr, err := wire.Marshal(&wire.ExportHeader{Format: wire.ExportFormat, Version: wire.ExportVersion, Cluster: cluster, Key: ch.COSEKey(), Blocks: total})
	if err != nil {
		return nil, err
	}
	if _, err := bw.Write(hdr); err != nil {
		return nil, fmt.Errorf("failed to write export: %w", err)
	}
	rng := transparency.Ranges.NewEmptyRange(0)
	var last int64
	errDone := errors.New("done")
	err = l.Blocks(0, func(b ledger.Block) error {
		raw, err := ledger.EncodeBlock(b)
		if err != nil {
			return err
		}
		item, err := wire.Marshal(raw)
		if err != nil {
			return err
		}
		if _, err := bw.Write(item); err != nil {
			return fmt.Errorf("failed to write export: %w", err)
		}
		hash, err := b.Header.Hash()
		if err != nil {
			return err
		}
		leaf := transparency.LeafHash(hash)
		if err := rng.Append(leaf[:], nil); err != nil {
			return err
		}
		last = b.Header.Time
		if progress != nil && (rng.End()%1024 == 0 || rng.End() == total) {
			progress(rng.End(), total)
		}
		if rng.End() == total {
			return errDone // blocks committed after the head we named are not exported
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, fmt.Errorf("failed to export block %d: %w", rng.End(), err)
	}
	if rng.End() != total {
		return nil, fmt.Errorf("failed to export: the ledger has %d blocks, its head says %d", rng.End(), total)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	signed, err := transparency.SignCheckpoint(ch, cluster, total, [32]byte(root), last)
	if err != nil {
		return nil, err
	}
	item, err := wire.Marshal(signed)
	if err != nil {
		return nil, err
	}
	if _, err := bw.Write(item); err != nil {
		return nil, fmt.Errorf("failed to write export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("failed to write export: %w", err)
	}
	return &transparency.Checkpoint{Cluster: cluster, Size: total, Root: [32]byte(root), TimeMS: uint64(last), Signed: signed}, nil
}

// ExportReport is what VerifyExport found in an intact export.
type ExportReport struct {
	Cluster    string
	Key        *ecdsa.PublicKey
	Devices    int // device IDs the chain binds
	Checkpoint *transparency.Checkpoint
}

// ErrExport is returned by VerifyExport for an export that is not intact:
// unreadable, signed by another key than the pinned one, with a checkpoint
// that does not state its blocks. A bad block is a *ledger.BadBlockError.
var ErrExport = errors.New("export is not intact")

// VerifyExport checks an export offline: its key must have the thumbprint
// pin; every block must pass the ledger's own checks (ledger.Replay: chain,
// signatures under that key, state machine, join evidence); the checkpoint
// must be signed by that key and state exactly the tree of those blocks.
// progress, if not nil, hears the blocks checked and the total.
func VerifyExport(r io.Reader, pin [32]byte, progress func(done, total uint64)) (*ExportReport, error) {
	dec := wire.NewSequenceDecoder(bufio.NewReader(r))
	var hdr wire.ExportHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrExport, err)
	}
	if err := hdr.Validate(); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrExport, err)
	}
	key, err := wire.ParsePublicKey(hdr.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: CH key: %w", ErrExport, err)
	}
	if th := wire.Thumbprint(key); th != pin {
		return nil, fmt.Errorf("%w: signed by key %x, not the pinned %x", ErrExport, th, pin)
	}
	v, err := keysvc.NewVerifier(key)
	if err != nil {
		return nil, err
	}
	replay := ledger.NewReplay(hdr.Cluster, v)
	rng := transparency.Ranges.NewEmptyRange(0)
	for i := uint64(0); i < hdr.Blocks; i++ {
		var raw []byte
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: block %d of %d: %w", ErrExport, i, hdr.Blocks, err)
		}
		ref, err := replay.Next(raw)
		if err != nil {
			return nil, err
		}
		leaf := transparency.LeafHash(ref.Hash)
		if err := rng.Append(leaf[:], nil); err != nil {
			return nil, err
		}
		if progress != nil && (i%1024 == 1023 || i+1 == hdr.Blocks) {
			progress(i+1, hdr.Blocks)
		}
	}
	var signed []byte
	if err := dec.Decode(&signed); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrExport, err)
	}
	var extra cbor.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the checkpoint", ErrExport)
	}
	cp, err := transparency.OpenCheckpoint(signed, key, hdr.Cluster)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExport, err)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if cp.Size != hdr.Blocks || cp.Root != [32]byte(root) {
		return nil, fmt.Errorf("%w: the checkpoint states tree size %d root %x, the blocks give %d %x", ErrExport, cp.Size, cp.Root, hdr.Blocks, root)
	}
	return &ExportReport{Cluster: hdr.Cluster, Key: key, Devices: replay.Devices(), Checkpoint: cp}, nil
}
