// Package rfc9162ref is an independent reference of RFC 9162 §2.1 for tests:
// the Merkle tree hash, audit paths and consistency proofs computed by the
// recursive definitions of §2.1.1, §2.1.3.1 and §2.1.4.1, and the
// verification algorithms of §2.1.3.2 and §2.1.4.2, each transcribed from
// the RFC's text. It shares no code with the library IoT-Guard uses
// (github.com/transparency-dev/merkle), so that tests can hold the ledger's
// proofs and the verifiers against it. The recursive definitions cost O(n)
// hashes per call: small trees only. Not for use outside tests.
package rfc9162ref

import (
	"bytes"
	"crypto/sha256"
)

// leafHash is HASH(0x00 || d) (§2.1.1).
func leafHash(d []byte) []byte {
	h := sha256.Sum256(append([]byte{0x00}, d...))
	return h[:]
}

// nodeHash is HASH(0x01 || l || r) (§2.1.1).
func nodeHash(l, r []byte) []byte {
	b := append(append([]byte{0x01}, l...), r...)
	h := sha256.Sum256(b)
	return h[:]
}

// split returns k, the largest power of two smaller than n (n > 1).
func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// MTH is the Merkle Tree Hash of the leaf inputs d (§2.1.1).
func MTH(d [][]byte) []byte {
	switch n := len(d); n {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return leafHash(d[0])
	default:
		k := split(n)
		return nodeHash(MTH(d[:k]), MTH(d[k:]))
	}
}

// Path is PATH(m, D[n]), the audit path of leaf m (§2.1.3.1), leaf to root.
func Path(m int, d [][]byte) [][]byte {
	n := len(d)
	if n <= 1 {
		return nil
	}
	k := split(n)
	if m < k {
		return append(Path(m, d[:k]), MTH(d[k:]))
	}
	return append(Path(m-k, d[k:]), MTH(d[:k]))
}

// Proof is PROOF(m, D[n]), the consistency proof of the first m leaves with
// all n (§2.1.4.1), for 0 < m ≤ n.
func Proof(m int, d [][]byte) [][]byte { return subproof(m, d, true) }

func subproof(m int, d [][]byte, b bool) [][]byte {
	n := len(d)
	if m == n {
		if b {
			return nil
		}
		return [][]byte{MTH(d)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, d[:k], b), MTH(d[k:]))
	}
	return append(subproof(m-k, d[k:], false), MTH(d[:k]))
}

// VerifyInclusion runs §2.1.3.2: whether path proves that the leaf with
// leaf hash h is at index in the tree of size with root.
func VerifyInclusion(index, size uint64, h []byte, path [][]byte, root []byte) bool {
	if index >= size {
		return false
	}
	fn, sn := index, size-1
	r := h
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(r, root)
}

// VerifyConsistency runs §2.1.4.2: whether path proves that the tree of size1
// with root1 is a prefix of the tree of size2 with root2. Equal sizes need an
// empty path and equal roots; size1 = 0 is outside the RFC's algorithm and
// fails.
func VerifyConsistency(size1, size2 uint64, root1, root2 []byte, path [][]byte) bool {
	switch {
	case size1 == 0 || size1 > size2:
		return false
	case size1 == size2:
		return len(path) == 0 && bytes.Equal(root1, root2)
	case len(path) == 0:
		return false
	}
	if size1&(size1-1) == 0 {
		path = append([][]byte{root1}, path...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr = nodeHash(c, fr)
			sr = nodeHash(c, sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	return bytes.Equal(fr, root1) && bytes.Equal(sr, root2) && sn == 0
}

// LeafHash is HASH(0x00 || d), exported for tests that feed VerifyInclusion.
func LeafHash(d []byte) []byte { return leafHash(d) }
