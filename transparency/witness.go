package transparency

import (
	"fmt"
)

// Witness is a verifier's memory of a log: the last checkpoint it verified.
// It accepts a newer checkpoint only with a consistency proof from that one,
// so that a log that rewrites any of what the witness has seen — even
// re-signed with the same key — is caught at the next check. Devices keep one
// across joins; `iotguard audit watch` keeps one in its state file.
type Witness struct {
	Last *Checkpoint // nil before the first checkpoint

	rotatedTo *[32]byte // FollowRotation's key, until a checkpoint of it is the last one
}

// FollowRotation lets the witness accept, as the next checkpoint, one signed
// by the key of thumbprint kid instead of the key of Last. The caller must
// have checked that signed rotations lead from Last's key to that key
// (docs/PROTOCOL.md §6.1): that is what makes a checkpoint of another key
// the same log's, not a fork. Once such a checkpoint is the last one, only
// its key is accepted.
func (w *Witness) FollowRotation(kid [32]byte) { w.rotatedTo = &kid }

// ForkError is the evidence of a fork: the checkpoint the witness had and
// the one that is not an extension of it, both signed, and why.
type ForkError struct {
	Old, New *Checkpoint
	Reason   string
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("%v: %s (tree size %d → %d)", ErrFork, e.Reason, e.Old.Size, e.New.Size)
}

// Unwrap returns ErrFork.
func (e *ForkError) Unwrap() error { return ErrFork }

// Advance checks next, a checkpoint already verified with OpenCheckpoint,
// against the last one with path, the consistency proof from the last tree
// size to next's (nil when the sizes are equal or there is no last one), and
// makes it the last one. A next that is not an extension of the last — a
// smaller tree, another root for the same size, another cluster, another key
// than the last one's or the FollowRotation one, or a path that does not
// verify — is a *ForkError and changes nothing. So is a next dated before the
// last, or the same tree at another time: a checkpoint's time is its newest
// block's, and block times never go backwards (the ledger's committer and
// Verify hold them to it), so either says the CH backdated blocks it added
// after the last checkpoint, or signed two times for one tree.
func (w *Witness) Advance(next *Checkpoint, path [][]byte) error {
	old := w.Last
	if old == nil {
		w.Last = next
		return nil
	}
	fork := func(reason string) error { return &ForkError{Old: old, New: next, Reason: reason} }
	switch {
	case next.Cluster != old.Cluster:
		return fork(fmt.Sprintf("cluster %q, earlier %q", next.Cluster, old.Cluster))
	case next.KID != old.KID && (w.rotatedTo == nil || next.KID != *w.rotatedTo):
		return fork(fmt.Sprintf("signed by key %x, earlier by %x", next.KID, old.KID))
	case next.Size < old.Size:
		return fork("the tree is smaller than before")
	case next.Size == old.Size && next.Root != old.Root:
		return fork("the same tree size has another root")
	case next.TimeMS < old.TimeMS:
		return fork(fmt.Sprintf("dated %d ms, before the earlier checkpoint's %d ms", next.TimeMS, old.TimeMS))
	case next.Size == old.Size && next.TimeMS != old.TimeMS:
		return fork(fmt.Sprintf("the same tree is dated %d ms, earlier %d ms", next.TimeMS, old.TimeMS))
	}
	if err := VerifyConsistency(old.Size, old.Root, next, path); err != nil {
		return fork(err.Error())
	}
	w.Last = next
	if w.Last.KID != old.KID {
		w.rotatedTo = nil
	}
	return nil
}
