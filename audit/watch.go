package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// State is what `iotguard audit watch` keeps in its state file between
// checks: the CH it watches (cluster and pinned key) and the last checkpoint
// it verified, exactly as signed.
type State struct {
	Cluster    string `json:"cluster"`
	Key        string `json:"key"`        // hex COSE_Key of the CH key that signed Checkpoint
	Checkpoint string `json:"checkpoint"` // hex COSE_Sign1 of the last checkpoint verified
}

// LoadState reads a state file; a missing file is a zero State (the first
// check).
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read watch state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("failed to parse watch state %s: %w", path, err)
	}
	return &s, nil
}

// Save writes s to path atomically.
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// ErrKeyChanged is returned by Watcher.Check when the CH signs with another
// key than the one of the checkpoint kept, and no rotation signed by the
// kept key leads to it (docs/PROTOCOL.md §6.1): an unannounced key change,
// which a watcher never follows by itself. The state is left as it was.
var ErrKeyChanged = errors.New("CH key changed without a signed rotation")

// Watcher checks a CH's checkpoints against the ones it verified before.
// Its CH's pin (device.DialPublic), if any, applies to every check: the CH
// key must be the pinned one or one that rotations signed by it lead to.
type Watcher struct {
	CH    *device.Public
	State *State
}

// Check is one round: fetch the CH key (GET /cluster) and the latest
// checkpoint, verify it under that key, prove it consistent with the last
// one kept (GET /ledger/consistency from its size), and keep it. On the
// first check the key is the one GET /cluster gives (checked against the
// pin). Later the key must be the kept checkpoint's, or one that rotations
// signed by it lead to (device.FollowKept: the rule by which devices and
// pins follow a rotation); then the watcher follows it, and anything else is
// ErrKeyChanged. A checkpoint that is not an extension of the last one is a
// *transparency.ForkError carrying both: the state is left as it was, so
// the evidence stays.
func (w *Watcher) Check(ctx context.Context) (*transparency.Checkpoint, error) {
	info, key, err := w.CH.ClusterKey(ctx)
	if err != nil {
		return nil, err
	}
	wit := &transparency.Witness{}
	if w.State.Checkpoint != "" {
		signed, err := hex.DecodeString(w.State.Checkpoint)
		if err != nil {
			return nil, fmt.Errorf("failed to read the kept checkpoint: %w", err)
		}
		if wit, err = device.FollowKept(signed, info, key); err != nil {
			return nil, keptError(err)
		}
	}
	next, err := w.CH.Checkpoint(ctx, key, info.Cluster)
	if err != nil {
		return nil, err
	}
	var path [][]byte
	if wit.Last != nil && next.Size > wit.Last.Size {
		// The path is checked by the witness: one that does not verify is
		// reported as a fork, with both checkpoints.
		c, err := w.CH.ConsistencyUnverified(ctx, key, info.Cluster, wit.Last.Size)
		if err != nil {
			return nil, err
		}
		if c.OldRoot != wit.Last.Root {
			return nil, &transparency.ForkError{Old: wit.Last, New: c.Checkpoint,
				Reason: fmt.Sprintf("the log's tree of size %d now has root %x", wit.Last.Size, c.OldRoot)}
		}
		next, path = c.Checkpoint, c.Path
	}
	if err := wit.Advance(next, path); err != nil {
		return nil, err
	}
	b, err := wire.EncodePublicKey(key)
	if err != nil {
		return nil, err
	}
	w.State.Key, w.State.Cluster = hex.EncodeToString(b), wit.Last.Cluster
	w.State.Checkpoint = hex.EncodeToString(wit.Last.Signed)
	return wit.Last, nil
}

// keptError says why the kept checkpoint cannot be followed to the CH's key.
func keptError(err error) error {
	var u *device.UntrustedCHError
	if !errors.As(err, &u) {
		return fmt.Errorf("failed to use the kept checkpoint: %w", err)
	}
	why := "it carries no rotation"
	if u.Chain != nil {
		why = u.Chain.Error()
	}
	return fmt.Errorf("%w: the kept checkpoint is signed by CH key %x, the CH now signs with %x, and no rotation signed by the kept key leads to it (%s)",
		ErrKeyChanged, u.Trusted, u.Got, why)
}
