package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/iotguard/iotguard/wire"
)

// Bucket and key names of the bbolt file. See the package documentation.
var (
	bucketBlocks      = []byte("blocks")
	bucketDevices     = []byte("devices")
	bucketMeta        = []byte("meta")
	bucketEnrollments = []byte("enrollments") // added after format 1 was released: created on a writable open

	keyVersion = []byte("version")
	keyCluster = []byte("cluster")
	keyHead    = []byte("head")
)

// formatVersion is the version of the stored layout; Open refuses others.
const formatVersion = 1

// DefaultLockTimeout is how long Open waits for the file lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// readChunk is how many blocks or records ReadBlocks and ReadDevices read per read
// transaction, so fn never runs inside a transaction.
const readChunk = 64

// Options configure Open.
type Options struct {
	// Cluster is the cluster ID. It is required to create a ledger and is
	// written into every header; for an existing ledger it must match the
	// stored one (ErrClusterMismatch), or be empty to accept the stored one.
	Cluster string

	// Signer signs new blocks. Without it the ledger is read-only: the file
	// is opened read-only and must exist, and Append returns ErrReadOnly.
	// With it, Open refuses a file whose head block does not match the head
	// in meta (ErrIndexMismatch), rather than extend a damaged chain.
	Signer Signer

	// Verifier checks block signatures in Verify; without it Verify returns
	// ErrNoVerifier.
	Verifier Verifier

	// MaxBatch is the most events per block, 1..MaxBatchLimit; zero means
	// MaxBatchLimit.
	MaxBatch int

	// Now gives the block time; nil means time.Now. Block times never go
	// backwards: a clock that does is held at the previous block's time.
	Now func() time.Time

	// LockTimeout bounds the wait for the file lock; zero means
	// DefaultLockTimeout. After it, Open returns ErrLocked.
	LockTimeout time.Duration

	// OnCommit, if set, is called by the committer after each durable block
	// with the block's height and number of events (metrics). It must be cheap.
	OnCommit func(height uint64, events int)

	// TreeProgress, if set, is called while a writable Open adds to the
	// Merkle tree the blocks of a ledger written before the tree existed,
	// with the blocks in the tree so far and the total (a progress bar: at a
	// million blocks this takes seconds).
	TreeProgress func(done, total uint64)
}

// Bolt is the Ledger kept in one bbolt file. Create it with Open; it is safe
// for concurrent use.
type Bolt struct {
	db       *bolt.DB
	path     string
	cluster  string
	signer   Signer
	verifier Verifier
	maxBatch int
	now      func() time.Time
	onCommit func(height uint64, events int)

	reqs    chan *request // unbuffered: a send completes only when the committer takes it
	imports chan *importRequest
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the committer has stopped

	closeOnce sync.Once
	closeErr  error

	mu       sync.RWMutex // guards head, headTime and counts; written only by the committer
	head     BlockRef
	headTime int64
	counts   Counts

	cache *recordCache // decoded index records

	tree *compact.Range // the Merkle tree's right border; guarded by mu, written only by the committer (see tree.go)
}

// headRecord is the value of meta "head".
type headRecord struct {
	Ref  BlockRef `cbor:"1,keyasint"`
	Time int64    `cbor:"2,keyasint"`
}

var errNotInitialized = errors.New("ledger not initialized")

// Open opens the ledger at path, creating the file (mode 0600) with a signed
// genesis block if it does not exist, and starts its committer. An existing
// ledger is reopened where it left off. Close must be called to release the
// file: while it is open, another Open of path — from this process or another
// — waits Options.LockTimeout and fails with ErrLocked (read-only opens may
// share the file with each other).
func Open(path string, opts Options) (*Bolt, error) {
	if opts.MaxBatch == 0 {
		opts.MaxBatch = MaxBatchLimit
	}
	if opts.MaxBatch < 1 || opts.MaxBatch > MaxBatchLimit {
		return nil, fmt.Errorf("failed to open ledger %s: MaxBatch %d outside 1..%d", path, opts.MaxBatch, MaxBatchLimit)
	}
	if !utf8.ValidString(opts.Cluster) {
		return nil, fmt.Errorf("failed to open ledger %s: cluster ID is not valid UTF-8", path)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	// Without a signer nothing is written: open read-only (a shared lock,
	// and no file is created where there was none).
	readOnly := opts.Signer == nil
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("failed to open ledger: %w", err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("failed to open ledger %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open ledger %s: %w", path, err)
	}
	l := &Bolt{
		db:       db,
		path:     path,
		cluster:  opts.Cluster,
		signer:   opts.Signer,
		verifier: opts.Verifier,
		maxBatch: opts.MaxBatch,
		onCommit: opts.OnCommit,
		now:      opts.Now,
		reqs:     make(chan *request),
		imports:  make(chan *importRequest),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		cache:    newRecordCache(),
	}
	err = db.View(l.load)
	switch {
	case errors.Is(err, errNotInitialized) && readOnly:
		err = fmt.Errorf("file is not a ledger yet: %w", ErrReadOnly)
	case errors.Is(err, errNotInitialized):
		err = db.Update(l.create)
	case err == nil && !readOnly:
		// A ledger written before enrollments existed gets their bucket.
		err = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketEnrollments)
			return err
		})
	}
	if err == nil && !readOnly {
		err = l.buildTree(opts.TreeProgress)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open ledger %s: %w", path, err)
	}
	go l.run()
	return l, nil
}

// load reads the meta bucket of an existing ledger.
func (l *Bolt) load(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || meta.Get(keyCluster) == nil {
		if tx.Bucket(bucketBlocks) != nil || tx.Bucket(bucketDevices) != nil {
			return errors.New("file has ledger buckets but no meta: not a ledger")
		}
		return errNotInitialized
	}
	if v := meta.Get(keyVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != formatVersion {
		return fmt.Errorf("unsupported ledger format version %x", v)
	}
	if tx.Bucket(bucketBlocks) == nil || tx.Bucket(bucketDevices) == nil {
		return errors.New("missing bucket: not a ledger")
	}
	cluster := string(meta.Get(keyCluster))
	if l.cluster != "" && l.cluster != cluster {
		return fmt.Errorf("%w: file has %q, want %q", ErrClusterMismatch, cluster, l.cluster)
	}
	l.cluster = cluster
	var h headRecord
	if err := wire.Unmarshal(meta.Get(keyHead), &h); err != nil {
		return fmt.Errorf("failed to read head: %w", err)
	}
	l.head, l.headTime = h.Ref, h.Time
	var err error
	if l.counts, err = loadCounts(tx); err != nil {
		return err
	}
	size, err := treeSize(tx)
	if err != nil {
		return err
	}
	if size > h.Ref.Height+1 && l.signer != nil {
		return fmt.Errorf("tree has %d leaves, the chain %d blocks; run Verify: %w", size, h.Ref.Height+1, ErrIndexMismatch)
	}
	if l.tree, err = loadRange(tx, min(size, h.Ref.Height+1)); err != nil {
		if l.signer != nil {
			return fmt.Errorf("%v; run Verify: %w", err, ErrIndexMismatch)
		}
		l.tree = treeRanges.NewEmptyRange(0) // read-only: no proofs, but Verify can report what is wrong
	}
	if l.signer != nil {
		return checkHead(tx.Bucket(bucketBlocks), h, l.verifier)
	}
	return nil
}

// checkHead refuses to extend a chain whose stored head block is not the one
// meta names. bbolt commits block and meta together, so a difference means
// the file was changed behind the ledger's back; appending on top would bury
// the damage under acknowledged events. With a verifier, the head block's
// signature must verify too: a CH whose key is not the one that signed the
// ledger (a ledger restored without its key) refuses to extend it
// (ErrWrongKey). Read-only opens skip the check so that Verify can report
// the bad block.
func checkHead(blocks *bolt.Bucket, h headRecord, v Verifier) error {
	mismatch := func(why string) error {
		return fmt.Errorf("head block %d %s; run Verify: %w", h.Ref.Height, why, ErrIndexMismatch)
	}
	if blocks.Get(heightKey(h.Ref.Height+1)) != nil {
		return mismatch("is not the last block")
	}
	blk, err := DecodeBlock(blocks.Get(heightKey(h.Ref.Height)))
	if err != nil {
		return mismatch(fmt.Sprintf("is unreadable (%v)", err))
	}
	hash, err := blk.Header.Hash()
	if err != nil {
		return err
	}
	if hash != h.Ref.Hash || blk.Header.Height != h.Ref.Height || blk.Header.Time != h.Time {
		return mismatch("does not match the head in meta")
	}
	if v == nil {
		return nil
	}
	hb, err := blk.Header.encode()
	if err != nil {
		return err
	}
	if err := v.Verify(hb, blk.Sig); err != nil {
		return fmt.Errorf("head block %d: %w", h.Ref.Height, ErrWrongKey)
	}
	return nil
}

// create writes the buckets, meta and the genesis block of a new ledger.
func (l *Bolt) create(tx *bolt.Tx) error {
	if l.cluster == "" {
		return errors.New("failed to create ledger: cluster ID is empty")
	}
	if l.signer == nil {
		return fmt.Errorf("failed to create ledger: %w", ErrReadOnly)
	}
	for _, name := range [][]byte{bucketBlocks, bucketDevices, bucketMeta, bucketEnrollments} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("failed to create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, formatVersion)); err != nil {
		return fmt.Errorf("failed to write format version: %w", err)
	}
	if err := meta.Put(keyCluster, []byte(l.cluster)); err != nil {
		return fmt.Errorf("failed to write cluster ID: %w", err)
	}
	genesis := Header{Height: 0, Time: l.now().UnixMilli(), Cluster: l.cluster}
	ref, err := l.writeBlock(tx, genesis, nil)
	if err != nil {
		return err
	}
	l.head, l.headTime = ref, genesis.Time
	l.tree = treeRanges.NewEmptyRange(0)
	if err := appendLeaf(tx, l.tree, ref.Hash); err != nil {
		return err
	}
	return storeCounts(tx, Counts{})
}

// writeBlock fills in h.Events, signs h, and stores the block and the new head
// in tx. It does not touch the device index.
func (l *Bolt) writeBlock(tx *bolt.Tx, h Header, events []Event) (BlockRef, error) {
	var err error
	if h.Events, err = HashEvents(events); err != nil {
		return BlockRef{}, err
	}
	hb, err := h.encode()
	if err != nil {
		return BlockRef{}, err
	}
	sign := l.signer.Sign
	if to, err := rotatedTo(events); err != nil {
		return BlockRef{}, err
	} else if to != nil {
		kr, ok := l.signer.(KeyRotator)
		if !ok {
			return BlockRef{}, fmt.Errorf("failed to sign block %d: %w: the signer cannot rotate its key", h.Height, ErrInvalidEvent)
		}
		sign = func(msg []byte) ([]byte, error) { return kr.SignWith(to, msg) }
	}
	sig, err := sign(hb)
	if err != nil {
		return BlockRef{}, fmt.Errorf("failed to sign block %d: %w", h.Height, err)
	}
	raw, err := EncodeBlock(Block{Header: h, Events: events, Sig: sig})
	if err != nil {
		return BlockRef{}, err
	}
	ref := BlockRef{Height: h.Height, Hash: sha256Sum(hb)}
	blocks := tx.Bucket(bucketBlocks)
	blocks.FillPercent = 1 // keys only ever grow: pack pages full
	if err := blocks.Put(heightKey(h.Height), raw); err != nil {
		return BlockRef{}, fmt.Errorf("failed to write block %d: %w", h.Height, err)
	}
	head, err := wire.Marshal(headRecord{Ref: ref, Time: h.Time})
	if err != nil {
		return BlockRef{}, err
	}
	if err := tx.Bucket(bucketMeta).Put(keyHead, head); err != nil {
		return BlockRef{}, fmt.Errorf("failed to write head: %w", err)
	}
	return ref, nil
}

func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), h) }

// isClosed reports whether Close has been called.
func (l *Bolt) isClosed() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// view runs fn in a read transaction, mapping a closed database to ErrClosed.
func (l *Bolt) view(fn func(*bolt.Tx) error) error {
	if l.isClosed() {
		return ErrClosed
	}
	err := l.db.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Lookup returns the index record of id, or an error wrapping
// ErrUnknownDevice when no join has ever bound id. The record's byte slices
// are shared with the cache: callers must not modify them.
func (l *Bolt) Lookup(id string) (Device, error) {
	if l.isClosed() {
		return Device{}, fmt.Errorf("failed to look up device %q: %w", id, ErrClosed)
	}
	d, ok, gen := l.cache.get(id)
	if ok {
		return d, nil
	}
	return l.lookupStored(id, gen)
}

// lookupStored is Lookup's cache miss: it reads id's record from the index
// and caches it if no commit happened since generation gen. (Apart from
// Lookup, so that a hit does not move the record to the heap.)
func (l *Bolt) lookupStored(id string, gen uint64) (Device, error) {
	var d Device
	err := l.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDevices).Get([]byte(id))
		if v == nil {
			return ErrUnknownDevice
		}
		return wire.Unmarshal(v, &d)
	})
	if err != nil {
		return Device{}, fmt.Errorf("failed to look up device %q: %w", id, err)
	}
	l.cache.fill(d, gen)
	return d, nil
}

// Head returns the newest committed block and its time in unix milliseconds.
func (l *Bolt) Head() (BlockRef, int64, error) {
	if l.isClosed() {
		return BlockRef{}, 0, ErrClosed
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head, l.headTime, nil
}

// Cluster returns the cluster ID of the ledger.
func (l *Bolt) Cluster() string { return l.cluster }

// Keys returns the CH keys Verify checks the blocks under, oldest first: its
// verifier's, when that is a KeyChain, else nil.
func (l *Bolt) Keys() [][]byte {
	if chain, ok := l.verifier.(KeyChain); ok {
		return chain.Keys()
	}
	return nil
}

// Blocks calls fn for every block from height from upwards, in height order,
// including blocks committed while it runs. fn runs outside any transaction,
// so it may call other methods, Append included.
func (l *Bolt) Blocks(from uint64, fn func(Block) error) error {
	return ReadBlocks(l.view, from, fn)
}

// Devices calls fn for every index record in ID order. fn runs outside any
// transaction, so it may call other methods; records changed meanwhile are
// seen as of when their chunk was read, not as one snapshot.
func (l *Bolt) Devices(fn func(Device) error) error {
	return ReadDevices(l.view, fn)
}

// Close commits the events already queued, stops the committer and closes the
// file. Later calls return the first call's result.
func (l *Bolt) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.done
		if err := l.db.Close(); err != nil {
			l.closeErr = fmt.Errorf("failed to close ledger %s: %w", l.path, err)
		}
	})
	return l.closeErr
}
