package ledger

import "context"

// BlockReader reads a chain's blocks: a Ledger, or the blocks of a stopped
// CometBFT node (what 'ledger verify --cometbft-home' reads).
type BlockReader interface {
	// Blocks calls fn for every block from height from upwards, in height
	// order, and stops at the first error fn returns, returning it.
	Blocks(from uint64, fn func(Block) error) error
}

// Ledger is the membership ledger as the rest of IoT-Guard sees it. It is
// shaped so that a replicated backend (for example on CometBFT) can implement
// it without changing its callers. All methods are safe for concurrent use.
type Ledger interface {
	// Append validates ev against the state machine and, if it is allowed,
	// commits it in a block. Concurrent calls are grouped into one block. It
	// returns only after the block is durably committed, or with an error and
	// nothing written for ev. ctx bounds the wait for a place in a block; once
	// ev is in a block being committed, Append waits for the outcome.
	Append(ctx context.Context, ev Event) (BlockRef, error)

	// Lookup returns the index record of id, or ErrUnknownDevice when no join
	// has ever bound id.
	Lookup(id string) (Device, error)

	// Head returns the newest block and its time in unix milliseconds.
	Head() (BlockRef, int64, error)

	BlockReader

	// Devices calls fn for every index record in ID order and stops at the
	// first error fn returns, returning it.
	Devices(fn func(Device) error) error

	// Enrollment returns the enrollment record of id, or ErrNotEnrolled
	// when id was never enrolled.
	Enrollment(id string) (Enrollment, error)

	// Enrollments calls fn for every enrollment record in ID order and
	// stops at the first error fn returns, returning it.
	Enrollments(fn func(Enrollment) error) error

	// Verify re-derives every hash and signature of the chain, replays its
	// events and compares the result with the index. It returns nil, a
	// *BadBlockError for the first bad block, or an error wrapping
	// ErrIndexMismatch. progress, if not nil, is called now and then.
	Verify(ctx context.Context, progress func(height, total uint64)) error

	// Close commits what is queued, stops accepting events and releases the
	// store. Every other method returns ErrClosed afterwards; Close itself
	// returns the first call's result again.
	Close() error
}

var _ Ledger = (*Bolt)(nil)
