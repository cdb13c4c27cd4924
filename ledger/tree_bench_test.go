package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/transparency"
)

// Benchmarks of the Merkle tree at scale. Building a ledger of a million
// signed blocks takes minutes, so these build the tree bucket alone, over
// made-up block hashes, in a real bbolt file, and serve proofs through the
// ledger's own methods. The million-block tree is built only with
// IOTGUARD_BENCH_1M=1 (not in 'make bench'):
//
//	IOTGUARD_BENCH_1M=1 go test ./ledger -run NONE -bench 'Tree' -benchtime 2000x

// treeOnly returns a Bolt whose file holds a tree of n leaves and nothing
// else: enough for TreeRoot and the proofs.
func treeOnly(b *testing.B, n uint64) *Bolt {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "tree.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	rng := treeRanges.NewEmptyRange(0)
	for rng.End() < n {
		err := db.Update(func(tx *bolt.Tx) error {
			for end := min(rng.End()+1<<16, n); rng.End() < end; {
				if err := appendLeaf(tx, rng, sha256.Sum256(binary.BigEndian.AppendUint64(nil, rng.End()))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	l := &Bolt{db: db, tree: rng, closing: make(chan struct{})}
	l.head.Height = n - 1
	b.Cleanup(func() { db.Close() })
	return l
}

func treeSizes(b *testing.B) []uint64 {
	sizes := []uint64{1_000, 100_000}
	if os.Getenv("IOTGUARD_BENCH_1M") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	return sizes
}

func pathBytes(p [][32]byte) float64 { return float64(len(p) * 32) }

// BenchmarkTreeProof: an inclusion proof of a random block and a consistency
// proof from a random earlier size, generated (O(log n) bbolt reads) and
// verified (the library's RFC 9162 check), with the proof's hash bytes.
func BenchmarkTreeProof(b *testing.B) {
	for _, n := range treeSizes(b) {
		l := treeOnly(b, n)
		th, err := l.TreeHead()
		if err != nil {
			b.Fatal(err)
		}
		cp := &transparency.Checkpoint{Size: n, Root: th.Root}
		r := rand.New(rand.NewPCG(1, 2))
		name := fmt.Sprintf("blocks=%d", n)
		b.Run(name+"/inclusion-generate", func(b *testing.B) {
			var bytes float64
			for b.Loop() {
				p, err := l.InclusionProof(r.Uint64N(n), n)
				if err != nil {
					b.Fatal(err)
				}
				bytes = pathBytes(p)
			}
			b.ReportMetric(bytes, "path-bytes")
		})
		b.Run(name+"/inclusion-verify", func(b *testing.B) {
			i := r.Uint64N(n)
			p, _ := l.InclusionProof(i, n)
			leafInput := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
			path := make([][]byte, len(p))
			for j := range p {
				path[j] = p[j][:]
			}
			for b.Loop() {
				if err := transparency.VerifyInclusion(cp, i, leafInput, path); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/consistency-generate", func(b *testing.B) {
			var bytes float64
			for b.Loop() {
				p, err := l.ConsistencyProof(1+r.Uint64N(n), n)
				if err != nil {
					b.Fatal(err)
				}
				bytes = pathBytes(p)
			}
			b.ReportMetric(bytes, "path-bytes")
		})
		b.Run(name+"/consistency-verify", func(b *testing.B) {
			m := 1 + r.Uint64N(n-1)
			p, _ := l.ConsistencyProof(m, n)
			old, _ := l.TreeRoot(m)
			path := make([][]byte, len(p))
			for j := range p {
				path[j] = p[j][:]
			}
			for b.Loop() {
				if err := transparency.VerifyConsistency(m, old, cp, path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTreeCommit is the cost the tree adds to a commit: a bbolt write
// transaction holding a block-sized value and the head (as a commit of one
// small block does), without and with the block's leaf and the nodes it
// completes, on a ledger of 100,000 blocks. No fsync (NoSync): the
// difference is the CPU and page writes the tree adds, which is what a join
// pays for it.
func BenchmarkTreeCommit(b *testing.B) {
	for _, withTree := range []bool{false, true} {
		b.Run(fmt.Sprintf("tree=%v", withTree), func(b *testing.B) {
			l := treeOnly(b, 100_000)
			rng := l.tree
			block := make([]byte, 700)
			h := rng.End()
			for b.Loop() {
				err := l.db.Update(func(tx *bolt.Tx) error {
					blocks, err := tx.CreateBucketIfNotExists(bucketBlocks)
					if err != nil {
						return err
					}
					blocks.FillPercent = 1
					if err := blocks.Put(heightKey(h), block); err != nil {
						return err
					}
					meta, err := tx.CreateBucketIfNotExists(bucketMeta)
					if err != nil {
						return err
					}
					if err := meta.Put(keyHead, block[:48]); err != nil {
						return err
					}
					if withTree {
						return appendLeaf(tx, rng, sha256.Sum256(block[:8]))
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				h++
			}
		})
	}
}
