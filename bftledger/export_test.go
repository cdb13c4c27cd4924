package bftledger

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// ProposalTime returns the proposal-time transaction of a proposer whose
// clock says t.
func ProposalTime(t time.Time) []byte {
	b, err := encodeProposalTime(t.UnixMilli())
	if err != nil {
		panic(err)
	}
	return b
}

// DecodeProposalTime is decodeProposalTime.
func DecodeProposalTime(raw []byte) (int64, bool) { return decodeProposalTime(raw) }

// WithProposalRewrite makes the node opened with o a byzantine proposer:
// f replaces the transactions of every block it proposes.
func WithProposalRewrite(o *Options, f func(txs [][]byte) [][]byte) { o.rewrite = f }

// RejectedProposals returns how many proposals l's application refused.
func RejectedProposals(l *Ledger) int64 { return l.app.rejectedProposals.Load() }

// TamperDevice rewrites l's committed record of id with f, and the state
// hash with it, as a validator rewriting its own history consistently
// would. Call it while no block is being executed.
func TamperDevice(l *Ledger, id string, f func(*ledger.Device)) error {
	a := l.app
	a.mu.Lock()
	defer a.mu.Unlock()
	old, ok, err := a.st.device(id)
	if err != nil || !ok {
		return fmt.Errorf("no record of %q: %v", id, err)
	}
	changed := old
	f(&changed)
	ob, err := wire.Marshal(old)
	if err != nil {
		return err
	}
	nb, err := wire.Marshal(changed)
	if err != nil {
		return err
	}
	c := *a.cur
	c.lt.remove(deviceElem(id, ob))
	c.lt.add(deviceElem(id, nb))
	err = a.st.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketDevices).Put([]byte(id), nb); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyLtHash, c.lt.bytes())
	})
	if err != nil {
		return err
	}
	a.cur = &c
	return nil
}

// AppDevice returns the committed record of id in a.
func AppDevice(a *App, id string) (ledger.Device, bool, error) { return a.st.device(id) }

// AppBlocks calls fn for every ledger block of a.
func AppBlocks(a *App, fn func(ledger.Block) error) error { return a.st.blocks(0, fn) }

// AppEnrollment returns the committed enrollment of id in a.
func AppEnrollment(a *App, id string) (ledger.Enrollment, bool, error) { return a.st.enrollment(id) }
