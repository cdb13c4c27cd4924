package bftledger

import (
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	cfg "github.com/cometbft/cometbft/config"
)

// closableDB is a CometBFT database that reads as empty once closed, instead
// of failing. CometBFT 0.38 closes its stores when a node stops while
// reactor goroutines may still read them (the consensus reactor's
// queryMaj23Routine loads commits until its next loop), and its stores panic
// on a read error — which would bring down the whole process that runs the
// node: the CH with it. An empty read makes such a goroutine skip its work
// and notice the stop instead.
type closableDB struct {
	dbm.DB
	mu     sync.RWMutex
	closed bool
}

// dbProvider opens CometBFT's databases as closableDBs.
func dbProvider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	return &closableDB{DB: db}, nil
}

func (d *closableDB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, nil
	}
	return d.DB.Get(key)
}

func (d *closableDB) Has(key []byte) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, nil
	}
	return d.DB.Has(key)
}

func (d *closableDB) Iterator(start, end []byte) (dbm.Iterator, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return emptyIterator{start, end}, nil
	}
	return d.DB.Iterator(start, end)
}

func (d *closableDB) ReverseIterator(start, end []byte) (dbm.Iterator, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return emptyIterator{start, end}, nil
	}
	return d.DB.ReverseIterator(start, end)
}

// Close closes the database once; reads that started before it finish first.
func (d *closableDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.DB.Close()
}

type emptyIterator struct{ start, end []byte }

func (e emptyIterator) Domain() ([]byte, []byte) { return e.start, e.end }
func (emptyIterator) Valid() bool                { return false }
func (emptyIterator) Next()                      {}
func (emptyIterator) Key() []byte                { return nil }
func (emptyIterator) Value() []byte              { return nil }
func (emptyIterator) Error() error               { return nil }
func (emptyIterator) Close() error               { return nil }
