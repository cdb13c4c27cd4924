package bftledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	cfg "github.com/cometbft/cometbft/config"
	cmtstore "github.com/cometbft/cometbft/store"
	"github.com/cometbft/cometbft/types"
	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// blockSource is the part of CometBFT's block store that Verify reads.
type blockSource interface {
	Base() int64
	Height() int64
	LoadBlock(height int64) *types.Block
	LoadBlockMeta(height int64) *types.BlockMeta
	LoadBlockCommit(height int64) *types.Commit
	LoadSeenCommit(height int64) *types.Commit
}

// memState is the state Verify rebuilds in memory.
type memState struct {
	records     map[string]ledger.Device
	enrollments map[string]ledger.Enrollment
	digests     map[[32]byte]bool
}

func (m *memState) enrollment(id string) (ledger.Enrollment, bool, error) {
	e, ok := m.enrollments[id]
	return e, ok, nil
}

func (m *memState) device(id string) (ledger.Device, bool, error) {
	d, ok := m.records[id]
	return d, ok, nil
}

func (m *memState) seen(d [32]byte) (bool, error) { return m.digests[d], nil }

// verifyAttempts bounds how often Verify catches up with a node that keeps
// committing while it runs.
const verifyAttempts = 20

// progressEvery is how many CometBFT blocks Verify checks between progress
// calls and context checks.
const progressEvery = 64

// Report is what a successful verification established.
type Report struct {
	Height    int64           // CometBFT height of the verified state
	Head      ledger.BlockRef // newest ledger block
	StateHash [32]byte        // after that height
}

// Verify re-derives this node's ledger from CometBFT's block store, from
// genesis: for every block, its hash, chain ID, link to the previous block,
// validator set and the commit signatures of more than two thirds of the
// genesis validators; that its header carries the chain's app hash and the
// results hash (state hash included, see execResults) that replay produced
// for the block before; then it replays every transaction (signature,
// cluster, state machine) at the block's decided time and compares each
// ledger block it makes with the stored one. Finally it compares the
// replayed records, transaction digests, head and state hash with the
// committed state. The first failure of a block
// is a *ledger.BadBlockError whose Height is the CometBFT height; a state
// that the chain does not produce is an error wrapping ledger.ErrIndexMismatch.
// It runs while the node commits, catching up a bounded number of times.
func (l *Ledger) Verify(ctx context.Context, progress func(height, total uint64)) error {
	if l.isClosed() {
		return ledger.ErrClosed
	}
	_, err := verifyChain(ctx, l.node.BlockStore(), l.genesis, l.app.st, progress)
	return err
}

// VerifyHome verifies the ledger of a stopped node in home, as Verify does.
func VerifyHome(ctx context.Context, home string, progress func(height, total uint64)) (*Report, error) {
	conf, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	gen, err := types.GenesisDocFromFile(conf.GenesisFile())
	if err != nil {
		return nil, fmt.Errorf("failed to read genesis of %s: %w", home, err)
	}
	db, err := cfg.DefaultDBProvider(&cfg.DBContext{ID: "blockstore", Config: conf})
	if err != nil {
		return nil, fmt.Errorf("failed to open block store of %s (stop the node first): %w", home, err)
	}
	defer db.Close()
	st, err := openStore(filepath.Join(conf.DBDir(), StoreFile), true)
	if err != nil {
		return nil, err
	}
	defer st.close()
	return verifyChain(ctx, cmtstore.NewBlockStore(db), gen, st, progress)
}

func verifyChain(ctx context.Context, bs blockSource, gen *types.GenesisDoc, st *store, progress func(height, total uint64)) (*Report, error) {
	fail := func(err error) (*Report, error) { return nil, fmt.Errorf("failed to verify ledger: %w", err) }
	s, err := ParseAppState(gen.AppState)
	if err != nil {
		return fail(err)
	}
	reg, err := s.registry()
	if err != nil {
		return fail(err)
	}
	vals := make([]*types.Validator, len(gen.Validators))
	for i, v := range gen.Validators {
		vals[i] = types.NewValidator(v.PubKey, v.Power)
	}
	valSet := types.NewValidatorSet(vals)
	cur, err := genesis(gen.ChainID, reg, gen.GenesisTime.UnixMilli())
	if err != nil {
		return fail(err)
	}
	if err := sameBlock(st, cur.blocks[0], 0); err != nil {
		return nil, err
	}
	appHash := cur.stateHash                    // the chain's, for good
	lastResults := types.NewResults(nil).Hash() // what the next block carries: block 1, the empty results' (CometBFT's genesis state)
	ms := &memState{records: map[string]ledger.Device{}, enrollments: map[string]ledger.Enrollment{}, digests: map[[32]byte]bool{}}
	var (
		h      int64
		prevID types.BlockID
	)
	for attempt := 0; ; attempt++ {
		c, err := st.load()
		if err != nil {
			return fail(err)
		}
		target := c.height
		if h == 0 && target > 0 && bs.Base() > 1 {
			return fail(fmt.Errorf("block store starts at height %d (pruned or state-synced): cannot replay from genesis", bs.Base()))
		}
		for h < target {
			h++
			if h%progressEvery == 0 {
				if err := ctx.Err(); err != nil {
					return fail(err)
				}
				if progress != nil {
					progress(uint64(h), uint64(target))
				}
			}
			if prevID, err = checkCometBlock(bs, gen.ChainID, valSet, h, prevID, appHash, lastResults); err != nil {
				return nil, err
			}
			blk := bs.LoadBlock(h)
			txs := make([][]byte, len(blk.Txs))
			for i, tx := range blk.Txs {
				txs[i] = tx
			}
			e := newExecutor(ms, reg, gen.ChainID, cur.head, decidedTime(txs, blk.Time.UnixMilli(), cur.head.Time))
			if err := execBlock(e, txs); err != nil {
				return fail(err)
			}
			out, err := e.finish(h, cur.lt)
			if err != nil {
				return fail(err)
			}
			lastResults = types.NewResults(execResults(out)).Hash()
			for _, b := range out.blocks {
				if err := sameBlock(st, b, h); err != nil {
					return nil, err
				}
			}
			for id, d := range out.devices {
				ms.records[id] = d
			}
			for id, e := range out.enrollments {
				ms.enrollments[id] = e
			}
			for _, d := range out.seen {
				ms.digests[d] = true
			}
			cur = out
		}
		if progress != nil {
			progress(uint64(h), uint64(target))
		}
		if bs.Height() > h { // the next header commits to the state replayed
			if meta := bs.LoadBlockMeta(h + 1); meta != nil && !bytes.Equal(meta.Header.LastResultsHash, lastResults) {
				return nil, &ledger.BadBlockError{Height: uint64(h + 1), Reason: "cometbft header carries a results hash that replay does not produce"}
			}
		}
		done, err := sameState(st, h, cur, ms)
		if err != nil || done {
			if err != nil {
				return nil, err
			}
			return &Report{Height: h, Head: cur.head.Ref, StateHash: cur.stateHash}, nil
		}
		if attempt == verifyAttempts {
			return fail(errors.New("the node kept committing: no stable state to compare"))
		}
	}
}

// checkCometBlock checks CometBFT block h against its predecessor's ID, the
// chain's app hash and the results hash replay produced for h-1, and its
// commit against the validators, and returns its ID.
func checkCometBlock(bs blockSource, chainID string, vals *types.ValidatorSet, h int64, prevID types.BlockID, appHash [32]byte, lastResults []byte) (types.BlockID, error) {
	bad := func(format string, args ...any) (types.BlockID, error) {
		return types.BlockID{}, &ledger.BadBlockError{Height: uint64(h), Reason: "cometbft block: " + fmt.Sprintf(format, args...)}
	}
	blk, meta := bs.LoadBlock(h), bs.LoadBlockMeta(h)
	if blk == nil || meta == nil {
		return bad("missing from the block store")
	}
	if err := blk.ValidateBasic(); err != nil {
		return bad("invalid: %v", err)
	}
	switch {
	case blk.ChainID != chainID:
		return bad("chain ID %q, want %q", blk.ChainID, chainID)
	case blk.Height != h:
		return bad("header claims height %d", blk.Height)
	case !bytes.Equal(blk.Hash(), meta.BlockID.Hash):
		return bad("hash does not match the stored block ID")
	case h > 1 && !blk.LastBlockID.Equals(prevID):
		return bad("does not link to block %d", h-1)
	case !bytes.Equal(blk.ValidatorsHash, vals.Hash()):
		return bad("validator set is not the genesis one")
	case !bytes.Equal(blk.AppHash, appHash[:]):
		return bad("app hash is not the chain's")
	case !bytes.Equal(blk.LastResultsHash, lastResults):
		return bad("results hash differs from replay of block %d", h-1)
	}
	commit := bs.LoadSeenCommit(h)
	if h < bs.Height() {
		commit = bs.LoadBlockCommit(h)
	}
	if commit == nil {
		return bad("no commit")
	}
	if err := vals.VerifyCommitLight(chainID, meta.BlockID, h, commit); err != nil {
		return bad("commit: %v", err)
	}
	return meta.BlockID, nil
}

// sameBlock compares the stored ledger block at b's height with b.
func sameBlock(st *store, b *ledger.Block, cometHeight int64) error {
	want, err := ledger.EncodeBlock(*b)
	if err != nil {
		return err
	}
	var got []byte
	err = st.db.View(func(tx *bolt.Tx) error {
		got = bytes.Clone(tx.Bucket(bucketBlocks).Get(heightKey(b.Header.Height)))
		return nil
	})
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		what := "differs from"
		if got == nil {
			what = "missing; made by"
		}
		return &ledger.BadBlockError{Height: b.Header.Height,
			Reason: fmt.Sprintf("stored ledger block %s replay of cometbft block %d", what, cometHeight)}
	}
	return nil
}

// sameState compares the committed state with the replayed one, in one read
// transaction. done is false when the node has committed past height.
func sameState(st *store, height int64, cur *outcome, ms *memState) (done bool, err error) {
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("failed to verify ledger: %s: %w", fmt.Sprintf(format, args...), ledger.ErrIndexMismatch)
	}
	err = st.db.View(func(tx *bolt.Tx) error {
		c, err := loadMeta(tx)
		if err != nil {
			return err
		}
		if c.height != height {
			return nil
		}
		done = true
		switch {
		case c.head != cur.head:
			return mismatch("head %d differs from the replayed %d", c.head.Ref.Height, cur.head.Ref.Height)
		case c.lt != cur.lt:
			return mismatch("state hash differs from the replayed one")
		case c.stateHash != cur.stateHash:
			return mismatch("state hash differs from the replayed one")
		}
		if k, _ := tx.Bucket(bucketBlocks).Cursor().Last(); k == nil || !bytes.Equal(k, heightKey(cur.head.Ref.Height)) {
			return mismatch("ledger blocks beyond the head %d", cur.head.Ref.Height)
		}
		if err := sameRecords(tx.Bucket(bucketDevices), "device", ms.records); err != nil {
			return mismatch("%v", err)
		}
		if err := sameRecords(tx.Bucket(bucketEnrollments), "enrollment", ms.enrollments); err != nil {
			return mismatch("%v", err)
		}
		n := 0
		err = tx.Bucket(bucketSeen).ForEach(func(k, _ []byte) error {
			if len(k) != 32 || !ms.digests[[32]byte(k)] {
				return fmt.Errorf("transaction digest %x not produced by the chain", k)
			}
			n++
			return nil
		})
		if err != nil {
			return mismatch("%v", err)
		}
		if n != len(ms.digests) {
			return mismatch("%d transaction digests stored, %d replayed", n, len(ms.digests))
		}
		return nil
	})
	return done, err
}

// sameRecords names the first record (a device or an enrollment: what), in
// ID order, whose stored form is not exactly the replayed one. A nil bucket
// holds no record.
func sameRecords[R any](b *bolt.Bucket, what string, records map[string]R) error {
	ids := make([]string, 0, len(records))
	for id := range records {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	i := 0
	each := func(k, v []byte) error {
		id := string(k)
		if i < len(ids) && ids[i] < id {
			return fmt.Errorf("%s %q missing from the index", what, ids[i])
		}
		if i == len(ids) || ids[i] != id {
			return fmt.Errorf("%s %q not produced by the chain", what, id)
		}
		want, err := wire.Marshal(records[id])
		if err != nil {
			return err
		}
		if !bytes.Equal(v, want) {
			return fmt.Errorf("%s %q differs from the replayed record", what, id)
		}
		i++
		return nil
	}
	if b != nil {
		if err := b.ForEach(each); err != nil {
			return err
		}
	}
	if i < len(ids) {
		return fmt.Errorf("%s %q missing from the index", what, ids[i])
	}
	return nil
}

// ReadBlocks calls fn for every ledger block of the stopped node in home.
func ReadBlocks(home string, fn func(ledger.Block) error) error {
	conf, err := LoadConfig(home)
	if err != nil {
		return err
	}
	st, err := openStore(filepath.Join(conf.DBDir(), StoreFile), true)
	if err != nil {
		return err
	}
	defer st.close()
	return st.blocks(0, fn)
}
