package audit

import (
	"context"
	"crypto/ecdsa"
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
	Key        string `json:"key"`        // hex COSE_Key of the CH
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

// Watcher checks a CH's checkpoints against the ones it verified before.
type Watcher struct {
	CH    *device.Public
	State *State
	Pin   []byte // thumbprint the CH key must have; nil: the key in State, or on the first check the one GET /cluster gives
}

// Check is one round: fetch the CH key (first time) and the latest
// checkpoint, verify it under the pinned key, prove it consistent with the
// last one kept (GET /ledger/consistency from its size), and keep it. A
// checkpoint that is not an extension of the last one is a
// *transparency.ForkError carrying both: the state is left as it was, so
// the evidence stays.
func (w *Watcher) Check(ctx context.Context) (*transparency.Checkpoint, error) {
	key, err := w.key(ctx)
	if err != nil {
		return nil, err
	}
	var wit transparency.Witness
	if w.State.Checkpoint != "" {
		signed, err := hex.DecodeString(w.State.Checkpoint)
		if err != nil {
			return nil, fmt.Errorf("failed to read the kept checkpoint: %w", err)
		}
		if wit.Last, err = transparency.OpenCheckpoint(signed, key, w.State.Cluster); err != nil {
			return nil, fmt.Errorf("failed to use the kept checkpoint: %w", err)
		}
	}
	next, err := w.CH.Checkpoint(ctx, key, "")
	if err != nil {
		return nil, err
	}
	var path [][]byte
	if wit.Last != nil && next.Size > wit.Last.Size {
		// The path is checked by the witness: one that does not verify is
		// reported as a fork, with both checkpoints.
		c, err := w.CH.ConsistencyUnverified(ctx, key, "", wit.Last.Size)
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
	w.State.Cluster = wit.Last.Cluster
	w.State.Checkpoint = hex.EncodeToString(wit.Last.Signed)
	return wit.Last, nil
}

// key returns the pinned CH key: from the state, or on the first check from
// GET /cluster (checked against Pin), stored in the state.
func (w *Watcher) key(ctx context.Context) (*ecdsa.PublicKey, error) {
	if w.State.Key != "" {
		b, err := hex.DecodeString(w.State.Key)
		if err != nil {
			return nil, fmt.Errorf("failed to read the kept CH key: %w", err)
		}
		key, err := wire.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("failed to read the kept CH key: %w", err)
		}
		if th := wire.Thumbprint(key); w.Pin != nil && string(th[:]) != string(w.Pin) {
			return nil, fmt.Errorf("%w: the state file pins CH key %x, --pin says %x", transparency.ErrWrongKey, th, w.Pin)
		}
		return key, nil
	}
	info, key, err := w.CH.ClusterKey(ctx)
	if err != nil {
		return nil, err
	}
	b, err := wire.EncodePublicKey(key)
	if err != nil {
		return nil, err
	}
	w.State.Key, w.State.Cluster = hex.EncodeToString(b), info.Cluster
	return key, nil
}
