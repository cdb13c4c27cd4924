package bftledger

import (
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// ltLanes and ltBytes size the lattice hash: LtHash16 with 1024 lanes of 16
// bits (Bellare–Micciancio; the parameters of Facebook's LtHash), which is
// believed to give well over 128 bits of collision resistance.
const (
	ltLanes = 1024
	ltBytes = 2 * ltLanes
)

// ltHash is a homomorphic set hash: the lane-wise sum, modulo 2^16, of the
// SHAKE128 expansion of every element of a multiset. Adding and removing an
// element cost one expansion each, whatever the size of the set, so the app
// hash can commit to every record without rehashing the state per block.
type ltHash [ltLanes]uint16

// expand returns the 2048-byte SHAKE128 expansion of elem as lanes.
func expand(elem []byte) *ltHash {
	b := sha3.SumSHAKE128(elem, ltBytes)
	var h ltHash
	for i := range h {
		h[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return &h
}

// add adds elem to the set.
func (h *ltHash) add(elem []byte) {
	e := expand(elem)
	for i := range h {
		h[i] += e[i]
	}
}

// remove removes elem, which must have been added.
func (h *ltHash) remove(elem []byte) {
	e := expand(elem)
	for i := range h {
		h[i] -= e[i]
	}
}

// replace moves id's record in h from old (the committed one, if had) to
// now, each as its element made by elem from the record's CBOR.
func (h *ltHash) replace(elem func(id string, record []byte) []byte, id string, old any, had bool, now any) error {
	if had {
		b, err := wire.Marshal(old)
		if err != nil {
			return err
		}
		h.remove(elem(id, b))
	}
	b, err := wire.Marshal(now)
	if err != nil {
		return err
	}
	h.add(elem(id, b))
	return nil
}

// bytes returns the 2048-byte little-endian state.
func (h *ltHash) bytes() []byte {
	b := make([]byte, ltBytes)
	for i, v := range h {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

// sum returns the SHA-256 of the state: what the app hash includes.
func (h *ltHash) sum() [32]byte { return sha256.Sum256(h.bytes()) }

// parseLtHash decodes a state written by bytes.
func parseLtHash(b []byte) (ltHash, error) {
	var h ltHash
	if len(b) != ltBytes {
		return h, fmt.Errorf("failed to read state hash: %d bytes, want %d", len(b), ltBytes)
	}
	for i := range h {
		h[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return h, nil
}

// Elements of the state set. Each starts with a distinct tag byte so that no
// record can stand for another kind.
func deviceElem(id string, record []byte) []byte { return recordElem('d', id, record) }

func enrollmentElem(id string, record []byte) []byte { return recordElem('e', id, record) }

// recordElem is a record of the kind tag: the tag, the ID's length and
// bytes, the record.
func recordElem(tag byte, id string, record []byte) []byte {
	e := make([]byte, 0, 2+len(id)+len(record))
	e = append(e, tag)
	e = binary.AppendUvarint(e, uint64(len(id)))
	e = append(e, id...)
	return append(e, record...)
}

func seenElem(digest [32]byte) []byte { return append([]byte{'s'}, digest[:]...) }

func clusterElem(id string, key []byte) []byte {
	e := []byte{'c'}
	e = binary.AppendUvarint(e, uint64(len(id)))
	e = append(e, id...)
	return append(e, key...)
}
