package transparency

import "errors"

// Errors a verifier branches on. Every error of this package wraps one of
// them, or wire.ErrMalformed for bytes that do not decode.
var (
	// ErrBadCheckpoint is returned when a signed checkpoint's signature does
	// not verify under the key it is checked with, or it names another
	// cluster than the one expected.
	ErrBadCheckpoint = errors.New("bad checkpoint")

	// ErrWrongKey is returned when a checkpoint's kid is not the thumbprint
	// of the key it is checked with: it was signed by another key (another
	// CH, or a rotated key the verifier has not followed).
	ErrWrongKey = errors.New("checkpoint signed by another key")

	// ErrBadProof is returned when an inclusion or consistency proof does not
	// lead to the checkpoint's root: a path of the wrong length for the tree
	// sizes (truncated, padded), a changed hash, a leaf or size outside the
	// tree.
	ErrBadProof = errors.New("proof does not verify")

	// ErrFork is returned (in a *ForkError) when a checkpoint is not an
	// extension of one verified earlier: a smaller tree, the same size with
	// another root, or no valid consistency proof between them. Two
	// checkpoints signed by the same key that fork are evidence that the
	// log was rewritten.
	ErrFork = errors.New("fork: the log is not an extension of the earlier checkpoint")
)
