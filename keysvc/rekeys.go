package keysvc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/wire"
)

// RekeyFile, in the data directory, records the members that re-keyed to a
// newer CH key (docs/PROTOCOL.md §6.2), so that after a restart the CH
// still refuses their old K_m and derives their coaps PSK from the new one.
// It holds no secret: a member ID, its join's CH nonce and a key thumbprint.
const RekeyFile = "rekeys.db"

var rekeyBucket = []byte("rekeys")

// rekeyMark records that a member re-keyed to a newer CH key, for its join
// with chNonce (drawn afresh for every join, so a rejoin's keys never see
// it).
type rekeyMark struct {
	chNonce string
	thumb   [32]byte
}

// encode returns the mark as stored: the CH nonce, then the thumbprint.
func (mk rekeyMark) encode() []byte {
	return append([]byte(mk.chNonce), mk.thumb[:]...)
}

// markSize is the size of a stored mark: a CH nonce and a thumbprint.
const markSize = wire.NonceLen + 32

// parseMark is the inverse of encode.
func parseMark(b []byte) (rekeyMark, error) {
	if len(b) != markSize {
		return rekeyMark{}, fmt.Errorf("malformed re-key mark: %d bytes, want %d", len(b), markSize)
	}
	mk := rekeyMark{chNonce: string(b[:wire.NonceLen])}
	copy(mk.thumb[:], b[wire.NonceLen:])
	return mk, nil
}

// rekeys holds the re-key marks in memory, read by every request, and in
// RekeyFile when the Service has a data directory.
//
// IMPORTANT: a mark is written only once a message of its member has
// authenticated under the newer key, and once per member, join and key: no
// datagram that does not authenticate causes a write.
type rekeys struct {
	marks sync.Map // member ID → rekeyMark
	path  string   // "" for a Service without a data directory
	mu    sync.Mutex
	db    *bolt.DB // opened at the first mark, or at load when the file exists
}

// loadRekeys reads dir's re-key marks, if it has any.
func loadRekeys(dir string) (*rekeys, error) {
	r := &rekeys{path: filepath.Join(dir, RekeyFile)}
	if _, err := os.Stat(r.path); errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	db, err := r.open()
	if err != nil {
		return nil, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(rekeyBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(id, v []byte) error {
			mk, err := parseMark(v)
			if err != nil {
				return fmt.Errorf("%s: member %q: %w", r.path, id, err)
			}
			r.marks.Store(string(id), mk)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to read re-keys: %w", err)
	}
	return r, nil
}

// open opens the file, once.
func (r *rekeys) open() (*bolt.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db != nil {
		return r.db, nil
	}
	db, err := bolt.Open(r.path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("failed to open %s (does another cluster head use this data directory?): %w", r.path, err)
	}
	r.db = db
	return db, nil
}

// get returns the mark of member id.
func (r *rekeys) get(id string) (rekeyMark, bool) {
	v, ok := r.marks.Load(id)
	if !ok {
		return rekeyMark{}, false
	}
	return v.(rekeyMark), true
}

// put records mk for member id: durably first (concurrent marks share a
// commit), then in memory, so no answer is sealed under a key a restart
// would forget.
func (r *rekeys) put(id string, mk rekeyMark) error {
	if r.path != "" {
		db, err := r.open()
		if err == nil {
			err = db.Batch(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(rekeyBucket)
				if err != nil {
					return err
				}
				return b.Put([]byte(id), mk.encode())
			})
		}
		if err != nil {
			return fmt.Errorf("%w for %s: %v", ErrRekeyNotRecorded, id, err)
		}
	}
	r.marks.Store(id, mk)
	return nil
}

// backup writes a consistent copy of the file to w, calling begin with its
// size first; nothing when no member has re-keyed.
func (r *rekeys) backup(w io.Writer, begin func(size int64) error) error {
	r.mu.Lock()
	db := r.db
	r.mu.Unlock()
	if db == nil {
		return nil
	}
	return db.View(func(tx *bolt.Tx) error {
		if err := begin(tx.Size()); err != nil {
			return err
		}
		if _, err := tx.WriteTo(w); err != nil {
			return fmt.Errorf("failed to back up %s: %w", r.path, err)
		}
		return nil
	})
}

// close closes the file, if open.
func (r *rekeys) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		return nil
	}
	err := r.db.Close()
	r.db = nil
	return err
}
