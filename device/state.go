// Package device is the device side of IoT-Guard: a device's identity and
// membership state, its requests to the cluster head (join, verify, session,
// leave), and device-to-device talk with encrypted M2M messages. The CLI,
// tests, benchmarks and the demo all use it; it shares every wire type with
// the server through wire and protect.
package device

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"

	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/internal/secretfile"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Membership is what a device keeps from its join: enough to re-derive K_m.
type Membership struct {
	Cluster     string `json:"cluster"`
	CHKey       []byte `json:"ch_key"` // COSE_Key
	DeviceNonce []byte `json:"device_nonce"`
	CHNonce     []byte `json:"ch_nonce"`
	Height      uint64 `json:"height"`
	BlockHash   []byte `json:"block_hash"`
	Expires     uint64 `json:"expires"`
}

// State is a device's persistent state. IMPORTANT: it holds the private key;
// files are written 0600, and Seq must be saved before each protected request
// is sent, so a restarted device never reuses a nonce.
type State struct {
	ID         string            `json:"id"`
	Key        *ecdsa.PrivateKey `json:"-"`
	KeyPKCS8   []byte            `json:"key_pkcs8"`
	Membership *Membership       `json:"membership,omitempty"`
	Seq        uint64            `json:"seq"` // next protected-request sequence number
	// Credential is the device's fleet credential (docs/PROTOCOL.md §3.5),
	// if it has one: every join carries it. Not a secret.
	Credential []byte `json:"credential,omitempty"`
	// Trusted is the RFC 9679 thumbprint of the CH key this device trusts:
	// set by its first join (or a re-pin) and kept when it leaves. Another
	// key is refused (TrustedCH, *UntrustedCHError).
	Trusted []byte `json:"trusted_ch,omitempty"`
	// Checkpoint is the last checkpoint of the CH's log this device verified
	// (COSE_Sign1): the next check proves the log consistent with it.
	Checkpoint []byte `json:"checkpoint,omitempty"`
	// PendingJoin is a join sent without a definite answer (5.03, a
	// timeout, an error: none is signed): it may be on the ledger. The next join to its cluster
	// reuses its nonce, so that the CH answers it with the recorded join
	// instead of recording a second one (once that membership has
	// expired, the CH records a new join with it).
	PendingJoin *PendingJoin `json:"pending_join,omitempty"`
	// SpentTickets are the tickets this device used as the initiator of a
	// talk, each until it expires: a ticket is used once. A join forgets
	// them (no ticket sealed before opens under its new member key); a
	// re-key does not (another process may still hold the old key).
	SpentTickets SpentTickets `json:"spent_tickets,omitzero"`
}

// PendingJoin is what a device keeps of a join whose outcome it does not
// know.
type PendingJoin struct {
	Cluster string `json:"cluster"`
	Nonce   []byte `json:"nonce"`
}

// NewState generates a fresh P-256 identity for id.
func NewState(id string) (*State, error) {
	if err := wire.CheckID(id); err != nil {
		return nil, fmt.Errorf("failed to use device ID %q: %w", id, err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate key for %s: %w", id, err)
	}
	return &State{ID: id, Key: k}, nil
}

// LoadState reads a state file written by Save. It holds the device's
// private key: a file that group or others may access is refused
// (secretfile.ErrPermissions, with the chmod 600 that fixes it).
func LoadState(path string) (*State, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read device file: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("failed to parse device file %s: %w", path, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(st.KeyPKCS8)
	if err != nil {
		return nil, fmt.Errorf("failed to parse key in %s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("failed to use key in %s: not P-256", path)
	}
	if err := wire.CheckID(st.ID); err != nil {
		return nil, fmt.Errorf("failed to use device file %s: %w", path, err)
	}
	st.Key, st.KeyPKCS8 = ec, nil
	return &st, nil
}

// Save writes st to path atomically with mode 0600.
func (st *State) Save(path string) error {
	return st.save(path, atomicfile.Write)
}

// Create is Save that never replaces an existing file (fs.ErrExist).
func (st *State) Create(path string) error {
	return st.save(path, atomicfile.Create)
}

func (st *State) save(path string, write func(string, []byte, os.FileMode) error) error {
	der, err := x509.MarshalPKCS8PrivateKey(st.Key)
	if err != nil {
		return fmt.Errorf("failed to encode key of %s: %w", st.ID, err)
	}
	cp := *st
	cp.KeyPKCS8 = der
	b, err := json.MarshalIndent(&cp, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode state of %s: %w", st.ID, err)
	}
	return write(path, append(b, '\n'), 0o600)
}

// MemberKeys derives the member keys of st's membership: ECDH of the device
// key with the CH key, then K_m and its expansions (docs/PROTOCOL.md §3.4).
func (st *State) MemberKeys() (*protect.MemberKeys, error) {
	m := st.Membership
	if m == nil {
		return nil, ErrNotJoined
	}
	pub, err := wire.ParsePublicKey(m.CHKey)
	if err != nil {
		return nil, fmt.Errorf("failed to use stored CH key: %w", err)
	}
	epub, err := pub.ECDH()
	if err != nil {
		return nil, err
	}
	epriv, err := st.Key.ECDH()
	if err != nil {
		return nil, err
	}
	z, err := epriv.ECDH(epub)
	if err != nil {
		return nil, fmt.Errorf("failed ECDH with the CH: %w", err)
	}
	km, err := protect.MemberKey(z, m.DeviceNonce, m.CHNonce, m.Cluster, st.ID, wire.Thumbprint(pub))
	if err != nil {
		return nil, err
	}
	k := protect.DeriveMemberKeys(km)
	return &k, nil
}

// PSK returns the device's DTLS identity and pre-shared key for coaps
// (docs/PROTOCOL.md §4.5): its ID and the PSK derived from its current member
// key. IMPORTANT: the PSK is a secret; it changes with every join.
func (st *State) PSK() (identity string, psk []byte, err error) {
	k, err := st.MemberKeys()
	if err != nil {
		return "", nil, err
	}
	return st.ID, bytes.Clone(k.PSK[:]), nil
}
