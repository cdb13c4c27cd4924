package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/proof"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// Session grants and warning verdicts are audit records that no later
// decision reads. Writing one ledger event per record made the ledger grow by
// ~60–90 bytes and a share of a signed block per grant or warning
// (docs/PERFORMANCE.md). Instead the CH keeps each record — a session Event
// (requester, peer, time, session ID, expiry, never a key) or a
// verify-warning Event (asker, subject, time, reason) — in its grant log, a
// bbolt file of its own, and commits them to the ledger in batches: one
// session-batch event per batch, carrying the batch's number, its number of
// records and the RFC 9162 Merkle root (SHA-256, the block tree's hash) over
// the records' encodings in order. The ledger's signatures and its block tree
// then cover every record by hash: an auditor holding a record and its
// inclusion path checks it against the signed batch event
// (VerifyGrantInclusion), and CheckGrants checks every batch of a ledger
// against the grant log. GrantLog.Prune deletes old records and keeps their
// batches' counts and roots.
//
// The grant log's layout: bucket "batches", key the 8-byte big-endian batch
// number, value the CBOR GrantBatch; bucket "grants", key batch number ‖
// 4-byte big-endian index, value the record's CBOR. A batch is written whole
// in one transaction before its event is appended (GrantLog.Write), and is
// marked with its block once the event is committed (GrantLog.Committed); a
// batch written but not marked is committed at the next start
// (RecoverGrants). So a crash loses the grants of the batch still open in
// the CH's memory, never a written one.

// MaxGrantBatch is the most grants one session-batch event commits to.
const MaxGrantBatch = 1 << 16

// GrantLogFile is the grant log's file name in a CH's data directory.
const GrantLogFile = "grants.db"

var (
	bucketGrantBatches = []byte("batches")
	bucketGrants       = []byte("grants")
	bucketGrantPrunes  = []byte("prunes") // key keyPruneRecorded: the last grants-pruned event appended (grantprune.go)
)

// GrantBatch describes one batch of the grant log.
type GrantBatch struct {
	Seq    uint64   `cbor:"1,keyasint"`           // batch number, from 1, without gaps
	Count  uint64   `cbor:"2,keyasint"`           // records in the batch
	Root   [32]byte `cbor:"3,keyasint"`           // Merkle root over the records (GrantRoot)
	TimeMS int64    `cbor:"4,keyasint"`           // when the batch was written (unix milliseconds)
	Height uint64   `cbor:"5,keyasint,omitempty"` // the block of its session-batch event; 0 until committed
	// Pruned says the batch's records were deleted (GrantLog.Prune): its
	// count and root stay, here and on the ledger.
	Pruned bool `cbor:"6,keyasint,omitempty"`
}

// Event returns the session-batch event of b by the CH of cluster.
func (b GrantBatch) Event(cluster string) Event {
	return Event{Type: EventSessionBatch, Device: cluster, Time: b.TimeMS, Batch: b.Seq, Count: b.Count, Root: b.Root[:]}
}

// EventAt is Event stamped with now rather than the batch's write time, if
// now is later: the event to append for a batch, which may be appended long
// after it was written (its first append failed or was left uncertain). A
// shared ledger (bftledger) refuses an event farther from its block's time
// than its max_event_skew_ms, so a batch appended with its write time would
// be refused for good once that old. The time of a batch's event only bounds
// its records' times from above (CheckGrants).
func (b GrantBatch) EventAt(cluster string, now time.Time) Event {
	ev := b.Event(cluster)
	ev.Time = max(ev.Time, now.UnixMilli())
	return ev
}

// GrantLeaf returns the Merkle leaf hash of one encoded grant record.
func GrantLeaf(record []byte) [32]byte { return transparency.HashLeaf(record) }

// GrantRoot returns the RFC 9162 root over the encoded records, in order.
func GrantRoot(records [][]byte) ([32]byte, error) {
	r := transparency.Ranges.NewEmptyRange(0)
	for _, rec := range records {
		leaf := GrantLeaf(rec)
		if err := r.Append(leaf[:], nil); err != nil {
			return [32]byte{}, fmt.Errorf("failed to hash grant records: %w", err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return [32]byte{}, fmt.Errorf("failed to hash grant records: %w", err)
	}
	return [32]byte(root), nil
}

// GrantInclusion returns the inclusion path of records[i] in the tree over
// records (RFC 9162 §2.1.3.1), what VerifyGrantInclusion checks.
func GrantInclusion(records [][]byte, i uint64) ([][]byte, error) {
	size := uint64(len(records))
	nodes, err := proof.Inclusion(i, size)
	if err != nil {
		return nil, fmt.Errorf("failed to prove grant %d of %d: %w", i, size, err)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for j, id := range nodes.IDs {
		begin, end := id.Coverage()
		root, err := GrantRoot(records[begin:min(end, size)])
		if err != nil {
			return nil, err
		}
		hashes[j] = root[:]
	}
	path, err := nodes.Rehash(hashes, transparency.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("failed to prove grant %d of %d: %w", i, size, err)
	}
	return path, nil
}

// VerifyGrantInclusion checks that path proves record to be grant i of the
// session-batch event ev. A failure wraps ErrBadGrant.
func VerifyGrantInclusion(ev Event, record []byte, i uint64, path [][]byte) error {
	if ev.Type != EventSessionBatch || i >= ev.Count {
		return fmt.Errorf("%w: grant %d is not in %s event of %d grants", ErrBadGrant, i, ev.Type, ev.Count)
	}
	if len(ev.Root) != transparency.HashSize {
		return fmt.Errorf("%w: batch %d has a %d-byte root", ErrBadGrant, ev.Batch, len(ev.Root))
	}
	if err := transparency.VerifyLeaf(GrantLeaf(record), i, ev.Count, path, [32]byte(ev.Root)); err != nil {
		return fmt.Errorf("%w: grant %d of batch %d: %w", ErrBadGrant, i, ev.Batch, err)
	}
	return nil
}

// GrantLog is a CH's store of session-grant records (see above). It is safe
// for concurrent use; the CH has one writer.
type GrantLog struct {
	db   *bolt.DB
	path string
}

// OpenGrantLog opens the grant log at path, creating it (mode 0600) unless
// readOnly. A read-only open of a missing file fails with an error wrapping
// os.ErrNotExist.
func OpenGrantLog(path string, readOnly bool) (*GrantLog, error) {
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("failed to open grant log %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultLockTimeout, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("failed to open grant log %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open grant log %s: %w", path, err)
	}
	if !readOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketGrantBatches, bucketGrants, bucketGrantPrunes} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("failed to initialize grant log %s: %w", path, err)
		}
	}
	return &GrantLog{db: db, path: path}, nil
}

// Close releases the file.
func (g *GrantLog) Close() error { return g.db.Close() }

func grantKey(seq uint64, i uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(make([]byte, 0, 12), seq), i)
}

// Write stores records, each a session Event's CBOR, as the next batch, in
// one durable transaction, and returns the batch (not yet committed to the
// ledger).
func (g *GrantLog) Write(records [][]byte, now time.Time) (GrantBatch, error) {
	if len(records) == 0 || len(records) > MaxGrantBatch {
		return GrantBatch{}, fmt.Errorf("failed to write grant batch: %d records (1..%d)", len(records), MaxGrantBatch)
	}
	root, err := GrantRoot(records)
	if err != nil {
		return GrantBatch{}, err
	}
	b := GrantBatch{Count: uint64(len(records)), Root: root, TimeMS: now.UnixMilli()}
	err = g.db.Update(func(tx *bolt.Tx) error {
		batches, grants := tx.Bucket(bucketGrantBatches), tx.Bucket(bucketGrants)
		b.Seq = 1
		if k, _ := batches.Cursor().Last(); k != nil {
			b.Seq = binary.BigEndian.Uint64(k) + 1
		}
		grants.FillPercent = 1 // appended in key order
		for i, rec := range records {
			if err := grants.Put(grantKey(b.Seq, uint32(i)), rec); err != nil {
				return err
			}
		}
		return putBatch(batches, b)
	})
	if err != nil {
		return GrantBatch{}, fmt.Errorf("failed to write grant batch to %s: %w", g.path, err)
	}
	return b, nil
}

func putBatch(batches *bolt.Bucket, b GrantBatch) error {
	v, err := wire.Marshal(b)
	if err != nil {
		return err
	}
	return batches.Put(binary.BigEndian.AppendUint64(nil, b.Seq), v)
}

// Committed records that batch seq's event is in block height.
func (g *GrantLog) Committed(seq, height uint64) error {
	err := g.db.Update(func(tx *bolt.Tx) error {
		batches := tx.Bucket(bucketGrantBatches)
		var b GrantBatch
		if err := wire.Unmarshal(batches.Get(binary.BigEndian.AppendUint64(nil, seq)), &b); err != nil {
			return err
		}
		b.Height = height
		return putBatch(batches, b)
	})
	if err != nil {
		return fmt.Errorf("failed to mark grant batch %d committed in %s: %w", seq, g.path, err)
	}
	return nil
}

// Batches calls fn for every batch in number order, and stops at the first
// error fn returns, returning it.
func (g *GrantLog) Batches(fn func(GrantBatch) error) error {
	var all []GrantBatch
	err := g.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGrantBatches).ForEach(func(k, v []byte) error {
			var b GrantBatch
			if err := wire.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("failed to read grant batch %x: %w", k, err)
			}
			all = append(all, b)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("failed to read grant log %s: %w", g.path, err)
	}
	for _, b := range all {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Records returns the encoded records of batch seq, in order.
func (g *GrantLog) Records(seq uint64) ([][]byte, error) {
	var recs [][]byte
	err := g.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketGrants).Cursor()
		prefix := binary.BigEndian.AppendUint64(nil, seq)
		for k, v := c.Seek(prefix); len(k) == 12 && string(k[:8]) == string(prefix); k, v = c.Next() {
			if binary.BigEndian.Uint32(k[8:]) != uint32(len(recs)) {
				return fmt.Errorf("%w: batch %d: record %d missing", ErrBadGrant, seq, len(recs))
			}
			recs = append(recs, slices.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read grant batch %d from %s: %w", seq, g.path, err)
	}
	return recs, nil
}

// Events returns the records of batch seq decoded, in order.
func (g *GrantLog) Events(seq uint64) ([]Event, error) {
	recs, err := g.Records(seq)
	if err != nil {
		return nil, err
	}
	evs := make([]Event, len(recs))
	for i, rec := range recs {
		if err := wire.Unmarshal(rec, &evs[i]); err != nil {
			return nil, fmt.Errorf("grant batch %d, record %d in %s: %w", seq, i, g.path, err)
		}
	}
	return evs, nil
}

// Backup writes a consistent copy of the grant log to w, as of one read
// transaction (writes go on meanwhile). begin is called first with the
// copy's size in bytes; an error from begin stops the backup.
func (g *GrantLog) Backup(w io.Writer, begin func(size int64) error) error {
	return g.db.View(func(tx *bolt.Tx) error {
		if err := begin(tx.Size()); err != nil {
			return err
		}
		if _, err := tx.WriteTo(w); err != nil {
			return fmt.Errorf("failed to back up grant log %s: %w", g.path, err)
		}
		return nil
	})
}

// GrantProof is one grant's record and what proves it: its batch, its
// index in the batch and the inclusion path to the root of the batch's
// session-batch event in block Height.
type GrantProof struct {
	Record []byte
	Event  Event // the session-batch event on the ledger
	Height uint64
	Index  uint64
	Path   [][]byte
}

// ProveGrant finds the grant of session sid in g and returns its proof
// (proveRecord). An error wrapping ErrNoRecord says that no record has that
// session ID (never granted, not yet committed, or pruned); one wrapping
// ErrBadGrant that the proof does not check.
func ProveGrant(l BlockReader, g *GrantLog, cluster string, sid []byte) (GrantProof, error) {
	p, err := proveRecord(l, g, cluster, func(_, _ uint64, ev Event) bool {
		return ev.Type == EventSession && string(ev.SessionID) == string(sid)
	})
	if errors.Is(err, errNoRecord) {
		return p, fmt.Errorf("session %x is %w (never granted, in a batch not yet committed, or pruned)", sid, ErrNoRecord)
	}
	return p, err
}

// ProveAuditRecord returns the proof of record index of batch seq in g —
// a session grant or a warning (proveRecord), or an error wrapping
// ErrNoRecord when g holds no such record.
func ProveAuditRecord(l BlockReader, g *GrantLog, cluster string, seq, index uint64) (GrantProof, error) {
	p, err := proveRecord(l, g, cluster, func(batch, i uint64, _ Event) bool { return batch == seq && i == index })
	if errors.Is(err, errNoRecord) {
		return p, fmt.Errorf("record %d of batch %d is %w (no such record, its batch not yet committed, or pruned)", index, seq, ErrNoRecord)
	}
	return p, err
}

// errNoRecord is proveRecord's answer when no record matches.
var errNoRecord = errors.New("no such record")

// proveRecord finds the first record of a committed, unpruned batch of g
// that match accepts (given its batch number, its index and the record
// decoded) and returns its proof, checked against the session-batch event
// of cluster on l (read from the block g recorded for its batch). It
// returns errNoRecord when none matches, an error wrapping ErrBadGrant when
// the proof does not check.
func proveRecord(l BlockReader, g *GrantLog, cluster string, match func(batch, index uint64, ev Event) bool) (GrantProof, error) {
	var p GrantProof
	found := false
	err := g.Batches(func(b GrantBatch) error {
		if found || b.Pruned || b.Height == 0 {
			return nil
		}
		recs, err := g.Records(b.Seq)
		if err != nil {
			return err
		}
		for i, rec := range recs {
			var ev Event
			if wire.Unmarshal(rec, &ev) != nil || !match(b.Seq, uint64(i), ev) {
				continue
			}
			path, err := GrantInclusion(recs, uint64(i))
			if err != nil {
				return err
			}
			p, found = GrantProof{Record: rec, Height: b.Height, Index: uint64(i), Path: path}, true
			return l.Blocks(b.Height, func(blk Block) error {
				for _, e := range blk.Events {
					if e.Type == EventSessionBatch && e.Device == cluster && e.Batch == b.Seq {
						p.Event = e
					}
				}
				return errStopBlocks
			})
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopBlocks) {
		return p, err
	}
	if !found {
		return p, errNoRecord
	}
	if err := VerifyGrantInclusion(p.Event, p.Record, p.Index, p.Path); err != nil {
		return p, err
	}
	return p, nil
}

// errStopBlocks ends a Blocks walk early.
var errStopBlocks = errors.New("stop")

// RecoverGrants commits the batches of g that a crash left written but not
// marked: a batch whose event is already in a block (found among the blocks
// after the last marked batch's) is marked; any other is appended now. A
// batch marked with a block beyond l's head counts as not marked: a backup
// copies the ledger before the grant log, so the copy of the grant log may
// hold batches the copy of the ledger does not. The CH calls it at start,
// before granting sessions.
func RecoverGrants(ctx context.Context, l Ledger, g *GrantLog, cluster string) error {
	head, _, err := l.Head()
	if err != nil {
		return fmt.Errorf("failed to look for uncommitted grant batches: %w", err)
	}
	var pending []GrantBatch
	var from uint64 = 1
	err = g.Batches(func(b GrantBatch) error {
		if b.Height == 0 || b.Height > head.Height {
			pending = append(pending, b)
		} else if len(pending) == 0 {
			from = b.Height + 1
		}
		return nil
	})
	if err != nil || len(pending) == 0 {
		return err
	}
	found := map[uint64]uint64{} // batch number → height of its event
	err = l.Blocks(from, func(b Block) error {
		for _, ev := range b.Events {
			if ev.Type == EventSessionBatch && ev.Device == cluster {
				found[ev.Batch] = b.Header.Height
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to look for uncommitted grant batches: %w", err)
	}
	for _, b := range pending {
		h, ok := found[b.Seq]
		if !ok {
			ref, err := l.Append(ctx, b.EventAt(cluster, time.Now()))
			if err != nil {
				return fmt.Errorf("failed to commit grant batch %d: %w", b.Seq, err)
			}
			h = ref.Height
		}
		if err := g.Committed(b.Seq, h); err != nil {
			return err
		}
	}
	return nil
}

// GrantSummary is what CheckGrants found.
type GrantSummary struct {
	Batches, Grants uint64
	Pruned          uint64 // grants of pruned batches: counted and rooted on the ledger, records deleted
	// PendingBatches and PendingGrants are in the grant log and not yet on
	// the ledger: written before the CH stopped without appending their
	// events (a crash, or an append that failed). Their records hash to
	// their roots; RecoverGrants appends them at the CH's next start.
	PendingBatches, PendingGrants uint64
}

// SessionBatchRef is a session-batch event and the height of its block.
type SessionBatchRef struct {
	Event  Event
	Height uint64
}

// IndexBatches maps the batch numbers of refs, the session-batch events of
// one cluster's chain, to their events. The same batch again (its number,
// count and root) is one batch appended twice — on a shared ledger an append
// left uncertain and its retry may both commit (bftledger) — indexed at its
// first block. A batch number again with another count or root is an error
// wrapping ErrBadGrant: the CH numbers its batches once each.
func IndexBatches(refs []SessionBatchRef) (map[uint64]SessionBatchRef, error) {
	m := make(map[uint64]SessionBatchRef, len(refs))
	for _, r := range refs {
		if first, dup := m[r.Event.Batch]; dup {
			if first.Event.Count != r.Event.Count || !bytes.Equal(first.Event.Root, r.Event.Root) {
				return nil, fmt.Errorf("%w: block %d holds batch %d again, with other grants", ErrBadGrant, r.Height, r.Event.Batch)
			}
			continue
		}
		m[r.Event.Batch] = r
	}
	return m, nil
}

// CheckGrants checks the session-batch events of cluster on l against the
// grant log g: no batch number twice on the ledger (IndexBatches); every
// batch on the ledger is in g with the same count and root, and its stored
// records pass CheckGrantBatch under the chain's GrantRule (both devices of
// a grant, a warning's asker, joined in a block before the batch's and
// current members within GrantSlack of the record's time), or, for a batch
// g marks pruned, a grants-pruned event of the ledger covers it
// (grantChain.PrunedBy); and every batch of g is on the
// ledger (the grant log numbers its batches 1, 2, 3, …, so a batch missing
// from both is seen as a gap in g) — but a batch g never marked committed
// may be missing: its records are checked against its own count and root and
// it is counted as pending, as the CH appends it at its next start
// (RecoverGrants). The first failure wraps ErrBadGrant.
//
// Batches may be on the ledger out of number order: one whose append failed
// is appended again later (RecoverGrants). Membership at a record's time is
// read from the events' times (grantChain), not replayed through the state
// machine.
func CheckGrants(ctx context.Context, l BlockReader, g *GrantLog, cluster string) (GrantSummary, error) {
	var s GrantSummary
	chain := newGrantChain(cluster)
	var head uint64
	err := l.Blocks(0, func(b Block) error {
		chain.add(b.Header.Height, b.Events)
		head = b.Header.Height
		return ctx.Err()
	})
	if err != nil {
		return s, err
	}
	onLedger, err := IndexBatches(chain.SessionBatches())
	if err != nil {
		return s, err
	}
	// A grant's devices joined before its batch's block; a pending batch's,
	// before the block after the head.
	var next uint64 = 1
	err = g.Batches(func(gb GrantBatch) error {
		if gb.Seq != next {
			return fmt.Errorf("%w: the grant log holds batch %d after batch %d", ErrBadGrant, gb.Seq, next-1)
		}
		next++
		ref, ok := onLedger[gb.Seq]
		if !ok && gb.Height == 0 && !gb.Pruned {
			s.PendingBatches++
			s.PendingGrants += gb.Count
			recs, err := g.Records(gb.Seq)
			if err != nil {
				return err
			}
			return CheckGrantBatch(gb.Event(cluster), recs, chain.GrantRule(head+1, gb.TimeMS))
		}
		if !ok {
			return fmt.Errorf("%w: batch %d (%d grants) is in the grant log, marked committed in block %d, not on the ledger", ErrBadGrant, gb.Seq, gb.Count, gb.Height)
		}
		delete(onLedger, gb.Seq)
		ev := ref.Event
		if gb.Count != ev.Count || string(gb.Root[:]) != string(ev.Root) {
			return fmt.Errorf("%w: batch %d: the grant log says %d grants with root %x, the ledger %d with root %x",
				ErrBadGrant, gb.Seq, gb.Count, gb.Root, ev.Count, ev.Root)
		}
		s.Batches++
		s.Grants += ev.Count
		if gb.Pruned {
			if _, ok := chain.PrunedBy(gb.Seq, ref.Height); !ok {
				return fmt.Errorf("%w: batch %d (%d grants, block %d) is pruned in the grant log, and no grants-pruned event on the ledger covers it (pruned by a CH before prunes were recorded? iotguard ledger prune-grants records one)",
					ErrBadGrant, gb.Seq, gb.Count, ref.Height)
			}
			s.Pruned += ev.Count
			return ctx.Err()
		}
		recs, err := g.Records(gb.Seq)
		if err != nil {
			return err
		}
		if err := CheckGrantBatch(ev, recs, chain.GrantRule(ref.Height, ev.Time)); err != nil {
			return err
		}
		return ctx.Err()
	})
	if err != nil {
		return s, err
	}
	for seq := range onLedger {
		return s, fmt.Errorf("%w: batch %d is on the ledger, not in the grant log", ErrBadGrant, seq)
	}
	return s, nil
}

// CheckGrantBatch checks recs, the records of the session-batch event ev,
// wherever they were read from (a grant log, an export): exactly ev.Count of
// them, hashing (GrantRoot) to ev.Root, each passing CheckGrantRecord under
// rule. A failure wraps ErrBadGrant and names the batch.
func CheckGrantBatch(ev Event, recs [][]byte, rule GrantRule) error {
	if uint64(len(recs)) != ev.Count {
		return fmt.Errorf("%w: batch %d: %d records, the ledger says %d", ErrBadGrant, ev.Batch, len(recs), ev.Count)
	}
	if root, err := GrantRoot(recs); err != nil || string(root[:]) != string(ev.Root) {
		return fmt.Errorf("%w: batch %d: the records hash to %x, the ledger says %x (%v)", ErrBadGrant, ev.Batch, root, ev.Root, err)
	}
	for i, rec := range recs {
		if err := CheckGrantRecord(rec, rule); err != nil {
			return fmt.Errorf("%w: batch %d, grant %d: %w", ErrBadGrant, ev.Batch, i, err)
		}
	}
	return nil
}

// GrantRule says whether a device an audit record names (its id, the
// record's time in unix milliseconds) may be named there: nil, or an error
// saying why not. grantChain.GrantRule is the chain's rule.
type GrantRule func(id string, atMS int64) error

// CheckGrantRecord is what a valid record of the grant log is: the CBOR of
// a valid audit event — a session grant whose requester and peer pass rule
// at the record's time, or a verify-warning whose asker does (its subject
// is whatever the asker named: the warning says it is not a current
// member, perhaps not a device at all).
func CheckGrantRecord(rec []byte, rule GrantRule) error {
	var ev Event
	if err := wire.Unmarshal(rec, &ev); err != nil {
		return fmt.Errorf("undecodable record: %w", err)
	}
	if err := ev.validate(); err != nil {
		return err
	}
	switch ev.Type {
	case EventSession:
		for _, id := range []string{ev.Device, ev.Peer} {
			if err := rule(id, ev.Time); err != nil {
				return fmt.Errorf("session of %q with %q: %q: %w", ev.Device, ev.Peer, id, err)
			}
		}
	case EventVerifyWarning:
		if err := rule(ev.Device, ev.Time); err != nil {
			return fmt.Errorf("warning to %q about %q: %w", ev.Device, ev.Peer, err)
		}
	default:
		return fmt.Errorf("a %s record", ev.Type)
	}
	return nil
}
