package ledger

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// MaxBatchLimit is the most events one block may hold. It is tied to the
// wire package's CBOR decoding limit of 64 array items: a block with more
// events could be written but never decoded again. Raising it means raising
// that limit first.
const MaxBatchLimit = 64

// BlockRef names a block: its height and the hash of its header.
type BlockRef struct {
	Height uint64   `cbor:"1,keyasint"`
	Hash   [32]byte `cbor:"2,keyasint"`
}

// Header is what a block's hash and signature cover. Events is the SHA-256 of
// the deterministic CBOR encoding of the block's events array, so the header
// commits to every event.
type Header struct {
	Height  uint64   `cbor:"1,keyasint"`
	Prev    [32]byte `cbor:"2,keyasint"` // hash of the header at Height-1; zero for genesis
	Time    int64    `cbor:"3,keyasint"` // unix milliseconds; never less than the previous block's
	Cluster string   `cbor:"4,keyasint"`
	Events  [32]byte `cbor:"5,keyasint"`
}

// Block is a header, the events it commits to and the cluster head's
// signature over the encoded header.
type Block struct {
	Header Header  `cbor:"1,keyasint"`
	Events []Event `cbor:"2,keyasint"` // genesis: empty; others: 1..MaxBatchLimit events
	Sig    []byte  `cbor:"3,keyasint"`
}

// encode returns the deterministic CBOR encoding of h: the bytes that are
// hashed and signed.
func (h Header) encode() ([]byte, error) {
	b, err := wire.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("failed to encode header %d: %w", h.Height, err)
	}
	return b, nil
}

// Hash returns the block hash: the SHA-256 of the deterministic CBOR
// encoding of h.
func (h Header) Hash() ([32]byte, error) {
	b, err := h.encode()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// HashEvents returns the SHA-256 of the deterministic CBOR encoding of events,
// the value a header's Events field must hold. A nil slice hashes like an
// empty one.
func HashEvents(events []Event) ([32]byte, error) {
	if events == nil {
		events = []Event{}
	}
	b, err := wire.Marshal(events)
	if err != nil {
		return [32]byte{}, fmt.Errorf("failed to encode events: %w", err)
	}
	return sha256.Sum256(b), nil
}

// EncodeBlock returns the deterministic CBOR encoding of b, the bytes the
// ledger stores. A nil Events slice is encoded as an empty array.
func EncodeBlock(b Block) ([]byte, error) {
	if b.Events == nil {
		b.Events = []Event{}
	}
	out, err := wire.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("failed to encode block %d: %w", b.Header.Height, err)
	}
	return out, nil
}

// DecodeBlock decodes one block under the wire decoding limits and accepts it
// only if it is in the encoding EncodeBlock produces, so a decoded block
// re-encodes to exactly b and there is one byte string per block. Errors wrap
// wire.ErrMalformed.
//
// DecodeBlock checks form, not truth: hashes, links and the signature are
// Verify's job.
func DecodeBlock(b []byte) (Block, error) {
	var blk Block
	if err := wire.Unmarshal(b, &blk); err != nil {
		return Block{}, fmt.Errorf("failed to decode block: %w", err)
	}
	again, err := EncodeBlock(blk)
	if err != nil {
		return Block{}, fmt.Errorf("failed to decode block: %w", err)
	}
	if !bytes.Equal(again, b) {
		return Block{}, fmt.Errorf("failed to decode block: %w: not in deterministic encoding", wire.ErrMalformed)
	}
	return blk, nil
}
