package bftledger

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/veraison/go-cose"

	"github.com/iotguard/iotguard/wire"
)

// DefaultMaxEventSkew is the max_event_skew_ms of an AppState that leaves it
// zero: ten minutes.
const DefaultMaxEventSkew = 10 * 60 * 1000

// AppState is the app_state of the genesis file: the registry of clusters
// that may write to the ledger, and the parameters of the state machine. It
// is fixed for the life of the chain.
type AppState struct {
	// Clusters lists every cluster and its CH public key. IDs are unique.
	Clusters []ClusterEntry `json:"clusters"`
	// MaxEventSkewMS bounds, in milliseconds, how far an event's Time (the
	// CH's clock) may be from the block time (consensus) for the event to be
	// applied. It bounds how long a signed transaction that was refused can
	// be held back and replayed. Zero means DefaultMaxEventSkew.
	MaxEventSkewMS int64 `json:"max_event_skew_ms,omitempty"`
}

// ClusterEntry registers one cluster: its ID and its CH's public key as a
// COSE_Key (base64 in JSON), as keysvc.Service.COSEKey returns it.
type ClusterEntry struct {
	ID  string `json:"id"`
	Key []byte `json:"key"`
}

// registry is the parsed AppState.
type registry struct {
	clusters map[string]registered
	maxSkew  int64
}

type registered struct {
	key      []byte // COSE_Key
	verifier cose.Verifier
}

// ParseAppState decodes and checks the genesis app_state.
func ParseAppState(b []byte) (*AppState, error) {
	var s AppState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("failed to decode app_state: %w", err)
	}
	if _, err := s.registry(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *AppState) registry() (*registry, error) {
	r := &registry{clusters: map[string]registered{}, maxSkew: s.MaxEventSkewMS}
	if r.maxSkew == 0 {
		r.maxSkew = DefaultMaxEventSkew
	}
	if r.maxSkew < 0 {
		return nil, fmt.Errorf("failed to read app_state: negative max_event_skew_ms")
	}
	for _, c := range s.Clusters {
		if err := wire.CheckID(c.ID); err != nil {
			return nil, fmt.Errorf("failed to read app_state: cluster %q: %w", c.ID, err)
		}
		if _, dup := r.clusters[c.ID]; dup {
			return nil, fmt.Errorf("failed to read app_state: cluster %q registered twice", c.ID)
		}
		pub, err := wire.ParsePublicKey(c.Key)
		if err != nil {
			return nil, fmt.Errorf("failed to read app_state: key of cluster %q: %w", c.ID, err)
		}
		v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
		if err != nil {
			return nil, fmt.Errorf("failed to read app_state: key of cluster %q: %w", c.ID, err)
		}
		r.clusters[c.ID] = registered{key: slices.Clone(c.Key), verifier: v}
	}
	return r, nil
}

// Marshal returns s as JSON for a genesis file.
func (s *AppState) Marshal() (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("failed to encode app_state: %w", err)
	}
	return b, nil
}
