package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// The transparency messages (docs/PROTOCOL.md §9): the signed checkpoint and
// the proofs the CH serves against it, and the header of a ledger export.

// AADCheckpoint binds a COSE_Sign1 to being a checkpoint.
var AADCheckpoint = []byte("iotguard checkpoint")

// MaxProofHashes bounds the hashes of one proof path. A tree of n blocks
// needs at most ⌈log2 n⌉ of them for inclusion and one more for consistency,
// so 63 covers every tree size a uint64 can count; the CBOR decoder's array
// limit (64) is the same bound.
const MaxProofHashes = 63

// Checkpoint is the payload of a signed checkpoint (§9.1): the tree over
// the first Size blocks of the ledger of Cluster has root Root; TimeMS is the
// newest of those blocks' time. The CH signs it (external AAD
// AADCheckpoint, kid = its key's thumbprint).
type Checkpoint struct {
	Cluster string `cbor:"1,keyasint"`
	Size    uint64 `cbor:"2,keyasint"`
	Root    []byte `cbor:"3,keyasint"`
	TimeMS  uint64 `cbor:"4,keyasint"`
}

func (m *Checkpoint) Validate() error {
	return firstError(CheckID(m.Cluster),
		require(m.Size >= 1, "checkpoint tree size must be at least 1 (the genesis block)"),
		require(len(m.Root) == HashLen, "checkpoint root must be 32 bytes"))
}

// InclusionProof answers GET /ledger/proof (§9.2): block Index, whose hash
// is BlockHash, is leaf Index of the tree the signed Checkpoint states; Path
// is its audit path, leaf to root. When the request named an earlier tree
// size (from), OldSize is it and Consistency proves that tree a prefix of
// the checkpoint's.
type InclusionProof struct {
	Checkpoint  []byte   `cbor:"1,keyasint"` // COSE_Sign1 of a Checkpoint
	Index       uint64   `cbor:"2,keyasint"`
	BlockHash   []byte   `cbor:"3,keyasint"`
	Path        [][]byte `cbor:"4,keyasint"`
	OldSize     uint64   `cbor:"5,keyasint,omitempty"`
	Consistency [][]byte `cbor:"6,keyasint,omitempty"`
}

func (m *InclusionProof) Validate() error {
	return firstError(
		require(len(m.Checkpoint) > 0, "checkpoint missing"),
		require(len(m.BlockHash) == HashLen, "block hash must be 32 bytes"),
		checkPath(m.Path),
		require(m.OldSize != 0 || m.Consistency == nil, "consistency path without an old tree size"),
		checkPath(m.Consistency),
	)
}

// ConsistencyProof answers GET /ledger/consistency (§9.3): the tree of the
// first OldSize blocks, whose root is OldRoot, is a prefix of the tree the
// signed Checkpoint states; Path is the RFC 9162 consistency proof.
type ConsistencyProof struct {
	Checkpoint []byte   `cbor:"1,keyasint"` // COSE_Sign1 of a Checkpoint
	OldSize    uint64   `cbor:"2,keyasint"`
	OldRoot    []byte   `cbor:"3,keyasint"`
	Path       [][]byte `cbor:"4,keyasint"`
}

func (m *ConsistencyProof) Validate() error {
	return firstError(
		require(len(m.Checkpoint) > 0, "checkpoint missing"),
		require(m.OldSize >= 1, "old tree size must be at least 1"),
		require(len(m.OldRoot) == HashLen, "old root must be 32 bytes"),
		checkPath(m.Path),
	)
}

// checkPath checks the form of a proof path: at most MaxProofHashes hashes
// of 32 bytes each.
func checkPath(p [][]byte) error {
	if len(p) > MaxProofHashes {
		return fmt.Errorf("%w: proof path of %d hashes, at most %d", ErrMalformed, len(p), MaxProofHashes)
	}
	for i, h := range p {
		if len(h) != HashLen {
			return fmt.Errorf("%w: proof hash %d is %d bytes, want 32", ErrMalformed, i, len(h))
		}
	}
	return nil
}

// ExportFormat names the file format of `iotguard ledger export`.
const ExportFormat = "iotguard ledger export"

// ExportVersion is the export format's version: 2 carries session-grant
// records, 3 the CH keys before a rotation (Earlier). A reader of version 3
// also reads versions 2 and 1 (no grants).
const ExportVersion = 3

// ExportHeader is the first item of a ledger export (§9.5), a CBOR sequence:
// this header; then Blocks byte strings each holding one encoded block in
// height order from genesis; then one byte string holding the signed
// checkpoint of tree size Blocks; then Grants grant batches in increasing
// batch number, each an ExportGrants item followed by its Count records,
// one byte string each. Nothing follows.
type ExportHeader struct {
	Format  string          `cbor:"1,keyasint"` // ExportFormat
	Version uint64          `cbor:"2,keyasint"` // ExportVersion
	Cluster string          `cbor:"3,keyasint"`
	Key     cbor.RawMessage `cbor:"4,keyasint"` // the CH public key (COSE_Key) in force: it signed the checkpoint and the blocks since the last rotation
	Blocks  uint64          `cbor:"5,keyasint"`
	Grants  uint64          `cbor:"6,keyasint,omitempty"` // grant batches after the checkpoint (version 2)
	// Earlier are the CH keys (COSE_Keys) in force before Key, oldest
	// first: the first signed genesis, and the chain's rotate events lead
	// from it through the others to Key (version 3; absent: no rotation).
	Earlier []cbor.RawMessage `cbor:"7,keyasint,omitempty"`
}

func (m *ExportHeader) Validate() error {
	return firstError(
		require(m.Format == ExportFormat, "not an IoT-Guard ledger export"),
		require(m.Version >= 1 && m.Version <= ExportVersion, fmt.Sprintf("export version %d, this iotguard reads 1 to %d", m.Version, ExportVersion)),
		require(m.Version >= 2 || m.Grants == 0, "grant batches in a version 1 export"),
		require(m.Version >= 3 || len(m.Earlier) == 0, "earlier CH keys in a version 1 or 2 export"),
		CheckID(m.Cluster), require(len(m.Key) > 0, "key missing"), require(m.Blocks >= 1, "export without blocks"),
	)
}

// ExportGrants opens one grant batch of an export: the records of the
// session-batch event numbered Batch, Count of them, follow it.
type ExportGrants struct {
	Batch uint64 `cbor:"1,keyasint"`
	Count uint64 `cbor:"2,keyasint"`
}

func (m *ExportGrants) Validate() error {
	return firstError(require(m.Batch >= 1, "grant batch number must be at least 1"),
		require(m.Count >= 1, "grant batch without records"))
}

// SequenceDecoder reads a CBOR sequence (RFC 8742), such as an export, one
// item at a time under the codec's limits and strictness.
type SequenceDecoder struct{ d *cbor.Decoder }

// NewSequenceDecoder returns a SequenceDecoder reading r.
func NewSequenceDecoder(r io.Reader) *SequenceDecoder { return &SequenceDecoder{decMode.NewDecoder(r)} }

// Decode decodes the next item into v: io.EOF at the end of the sequence,
// an error wrapping ErrMalformed for an item that does not decode.
func (s *SequenceDecoder) Decode(v any) error {
	err := s.d.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return fmt.Errorf("%w: %T: %v", ErrMalformed, v, err)
}
