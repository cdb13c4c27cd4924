package bftledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// StoreFile is the application state's file name inside the CometBFT data
// directory (HOME/data).
const StoreFile = "iotguard.db"

// Buckets and keys of the application's bbolt file.
//
//	blocks   8-byte big-endian ledger height → encoded ledger.Block
//	devices      device ID → CBOR ledger.Device (with Cluster)
//	enrollments  device ID → CBOR ledger.Enrollment (with Cluster)
//	seen         transaction digest → 8-byte CometBFT height of its block
//	meta         see the key* names
var (
	bucketBlocks      = []byte("blocks")
	bucketDevices     = []byte("devices")
	bucketEnrollments = []byte("enrollments") // created by the first commit on a store written before it existed
	bucketSeen        = []byte("seen")
	bucketMeta        = []byte("meta")

	keyVersion   = []byte("version")
	keyChainID   = []byte("chain-id")
	keyAppState  = []byte("app-state")  // genesis app_state JSON
	keyHeight    = []byte("height")     // CometBFT height of the last committed block
	keyStateHash = []byte("state-hash") // after that block
	keyAppHash   = []byte("app-hash")   // the chain's constant app hash (see appHash)
	keyLtHash    = []byte("lthash")
	keyHead      = []byte("head") // CBOR head
)

// storeVersion 2: the state hash goes into transaction results, the app
// hash is constant (version 1 returned the state hash as the app hash).
const storeVersion = 2

// committed is the meta of the committed state.
type committed struct {
	chainID   string
	appState  []byte
	appHash   [32]byte // constant for the chain
	height    int64
	stateHash [32]byte
	lt        ltHash
	head      head
}

var errNotInitialized = errors.New("application state not initialized")

// store is the application state in one bbolt file.
type store struct {
	db *bolt.DB
}

func openStore(path string, readOnly bool) (*store, error) {
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("failed to open application state: %w", err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("failed to open application state %s: %w", path, ledger.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open application state %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// load reads the committed meta, or errNotInitialized before InitChain.
func (s *store) load() (*committed, error) {
	var c *committed
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = loadMeta(tx)
		return err
	})
	return c, err
}

func loadMeta(tx *bolt.Tx) (*committed, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || meta.Get(keyChainID) == nil {
		return nil, errNotInitialized
	}
	if v := meta.Get(keyVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != storeVersion {
		return nil, fmt.Errorf("unsupported application state version %x", v)
	}
	c := &committed{chainID: string(meta.Get(keyChainID)), appState: bytes.Clone(meta.Get(keyAppState))}
	h := meta.Get(keyHeight)
	if len(h) != 8 || len(meta.Get(keyStateHash)) != 32 || len(meta.Get(keyAppHash)) != 32 {
		return nil, errors.New("failed to read application state: malformed height, state hash or app hash")
	}
	c.height = int64(binary.BigEndian.Uint64(h))
	copy(c.stateHash[:], meta.Get(keyStateHash))
	copy(c.appHash[:], meta.Get(keyAppHash))
	var err error
	if c.lt, err = parseLtHash(meta.Get(keyLtHash)); err != nil {
		return nil, err
	}
	if err := wire.Unmarshal(meta.Get(keyHead), &c.head); err != nil {
		return nil, fmt.Errorf("failed to read ledger head: %w", err)
	}
	return c, nil
}

// device implements state over the committed records.
func (s *store) device(id string) (ledger.Device, bool, error) {
	return getRecord[ledger.Device](s, bucketDevices, "device", id)
}

// enrollment implements state over the committed enrollments.
func (s *store) enrollment(id string) (ledger.Enrollment, bool, error) {
	return getRecord[ledger.Enrollment](s, bucketEnrollments, "enrollment", id)
}

// getRecord reads the committed record (what: its kind) of id from bucket;
// a missing bucket holds none.
func getRecord[R any](s *store, bucket []byte, what, id string) (R, bool, error) {
	var r R
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		return wire.Unmarshal(v, &r)
	})
	if err != nil {
		var zero R
		return zero, false, fmt.Errorf("failed to read %s %q: %w", what, id, err)
	}
	return r, ok, nil
}

// seen implements state over the committed digests.
func (s *store) seen(d [32]byte) (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketSeen).Get(d[:]) != nil
		return nil
	})
	return ok, err
}

// initChain replaces whatever the file holds by the genesis state g; its
// state hash becomes the chain's app hash.
func (s *store) initChain(chainID string, appState []byte, g *outcome) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketBlocks, bucketDevices, bucketEnrollments, bucketSeen, bucketMeta} {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return fmt.Errorf("failed to reset bucket %s: %w", name, err)
				}
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("failed to create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, storeVersion)); err != nil {
			return err
		}
		if err := meta.Put(keyChainID, []byte(chainID)); err != nil {
			return err
		}
		if err := meta.Put(keyAppState, appState); err != nil {
			return err
		}
		if err := meta.Put(keyAppHash, g.stateHash[:]); err != nil { // the genesis state's hash, for good
			return err
		}
		return writeOutcome(tx, g)
	})
}

// commit writes the outcome of a block — ledger block, records, digests and
// meta — in one transaction.
func (s *store) commit(o *outcome) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return writeOutcome(tx, o) })
	if err != nil {
		return fmt.Errorf("failed to commit block %d: %w", o.height, err)
	}
	return nil
}

func writeOutcome(tx *bolt.Tx, o *outcome) error {
	blocks := tx.Bucket(bucketBlocks)
	blocks.FillPercent = 1 // keys only ever grow
	for _, b := range o.blocks {
		raw, err := ledger.EncodeBlock(*b)
		if err != nil {
			return err
		}
		if err := blocks.Put(heightKey(b.Header.Height), raw); err != nil {
			return fmt.Errorf("failed to write ledger block %d: %w", b.Header.Height, err)
		}
	}
	devices := tx.Bucket(bucketDevices)
	for id, d := range o.devices {
		v, err := wire.Marshal(d)
		if err != nil {
			return fmt.Errorf("failed to encode device %q: %w", id, err)
		}
		if err := devices.Put([]byte(id), v); err != nil {
			return fmt.Errorf("failed to write device %q: %w", id, err)
		}
	}
	enrollments, err := tx.CreateBucketIfNotExists(bucketEnrollments)
	if err != nil {
		return fmt.Errorf("failed to create bucket %s: %w", bucketEnrollments, err)
	}
	for id, e := range o.enrollments {
		v, err := wire.Marshal(e)
		if err != nil {
			return fmt.Errorf("failed to encode enrollment of %q: %w", id, err)
		}
		if err := enrollments.Put([]byte(id), v); err != nil {
			return fmt.Errorf("failed to write enrollment of %q: %w", id, err)
		}
	}
	seen := tx.Bucket(bucketSeen)
	for _, d := range o.seen {
		if err := seen.Put(d[:], heightKey(uint64(o.height))); err != nil {
			return fmt.Errorf("failed to write digest: %w", err)
		}
	}
	hb, err := wire.Marshal(o.head)
	if err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	for _, kv := range []struct{ k, v []byte }{
		{keyHeight, heightKey(uint64(o.height))},
		{keyStateHash, o.stateHash[:]},
		{keyLtHash, o.lt.bytes()},
		{keyHead, hb},
	} {
		if err := meta.Put(kv.k, kv.v); err != nil {
			return fmt.Errorf("failed to write %s: %w", kv.k, err)
		}
	}
	return nil
}

func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), h) }

// blocks calls fn for every ledger block from height from upwards.
func (s *store) blocks(from uint64, fn func(ledger.Block) error) error {
	return ledger.ReadBlocks(s.db.View, from, fn)
}

// devices calls fn for every record in ID order.
func (s *store) devices(fn func(ledger.Device) error) error {
	return ledger.ReadDevices(s.db.View, fn)
}

// enrollments calls fn for every enrollment in ID order.
func (s *store) enrollments(fn func(ledger.Enrollment) error) error {
	return ledger.ReadEnrollments(s.db.View, fn)
}
