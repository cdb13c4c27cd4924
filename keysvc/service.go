// Package keysvc owns the cluster head's private key and every secret derived
// from it: signing, ECDH with members, the member keys K_m, session keys Sk,
// echo values. IMPORTANT: no private key or derived secret leaves this
// package; callers get signatures, sealed bytes and opened plaintexts.
package keysvc

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/veraison/go-cose"

	"github.com/iotguard/iotguard/internal/echo"
	"github.com/iotguard/iotguard/wire"
)

// memberCacheSize bounds the member-key cache; a miss costs one ECDH (~50 µs)
// and an HKDF, so the cache is an optimisation, not state. An entry holds the
// member's three expanded AES-GCM keys (~2.4 KiB), so the cache stays under
// ~40 MiB however many members there are.
const memberCacheSize = 1 << 14

// Service is the CH key service. It is safe for concurrent use.
type Service struct {
	cluster  string
	priv     *ecdsa.PrivateKey
	ecdhPriv *ecdh.PrivateKey
	signer   cose.Signer
	verifier cose.Verifier
	coseKey  []byte
	thumb    [32]byte
	echoes   *echo.Issuer                     // per process: echoes do not survive a restart, by design
	members  *lru.Cache[string, *memberEntry] // by member ID
	timer    func(op string, d time.Duration)
}

// SetTimer installs a hook that receives the duration of each operation:
// "sign", "ecdh", "hkdf", "aead_seal", "aead_open". Call it before use.
func (s *Service) SetTimer(f func(op string, d time.Duration)) { s.timer = f }

// timed runs f and reports its duration as op.
func (s *Service) timed(op string, start time.Time) {
	if s.timer != nil {
		s.timer(op, time.Since(start))
	}
}

// Open loads the CH key of cluster from dir, creating it (0600) on first start.
func Open(dir, cluster string) (*Service, error) {
	return open(dir, cluster, true)
}

// OpenExisting is Open for a data directory that must already hold its key
// (it holds a ledger): a missing key is ErrNoKey, never replaced.
func OpenExisting(dir, cluster string) (*Service, error) {
	return open(dir, cluster, false)
}

// Load loads the CH key from dir for offline use (signature checks of the
// ledger); it fails with ErrNoKey if there is none. Member operations of the
// returned Service need the cluster ID and must not be used.
func Load(dir string) (*Service, error) {
	return open(dir, "", false)
}

func open(dir, cluster string, create bool) (*Service, error) {
	priv, err := loadOrCreate(filepath.Join(dir, KeyFile), create)
	if err != nil {
		return nil, err
	}
	return New(priv, cluster)
}

// New returns a Service for cluster over priv, a P-256 key, kept in memory
// only (Open keeps it in a file). Tests of the cluster core use it.
func New(priv *ecdsa.PrivateKey, cluster string) (*Service, error) {
	if priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("failed to use CH key: not a P-256 key")
	}
	s := &Service{priv: priv, cluster: cluster}
	var err error
	if s.ecdhPriv, err = priv.ECDH(); err != nil {
		return nil, fmt.Errorf("failed to use CH key for ECDH: %w", err)
	}
	if s.signer, err = cose.NewSigner(cose.AlgorithmES256, priv); err != nil {
		return nil, fmt.Errorf("failed to make CH signer: %w", err)
	}
	if s.verifier, err = cose.NewVerifier(cose.AlgorithmES256, &priv.PublicKey); err != nil {
		return nil, fmt.Errorf("failed to make CH verifier: %w", err)
	}
	if s.coseKey, err = wire.EncodePublicKey(&priv.PublicKey); err != nil {
		return nil, err
	}
	s.thumb = wire.Thumbprint(&priv.PublicKey)
	s.echoes = echo.New()
	if s.members, err = lru.New[string, *memberEntry](memberCacheSize); err != nil {
		return nil, err
	}
	return s, nil
}

// PublicKey returns the CH public key.
func (s *Service) PublicKey() *ecdsa.PublicKey { return &s.priv.PublicKey }

// COSEKey returns the CH public key as a COSE_Key.
func (s *Service) COSEKey() []byte { return s.coseKey }

// Thumbprint returns the RFC 9679 thumbprint of the CH public key.
func (s *Service) Thumbprint() [32]byte { return s.thumb }

// Sign returns an ES256 signature (r ‖ s) over msg. It implements
// ledger.Signer: blocks are signed with it.
func (s *Service) Sign(msg []byte) ([]byte, error) {
	defer s.timed("sign", time.Now())
	sig, err := s.signer.Sign(rand.Reader, msg)
	if err != nil {
		return nil, fmt.Errorf("failed to sign: %w", err)
	}
	return sig, nil
}

// Verify checks an ES256 signature by the CH key. It implements ledger.Verifier.
func (s *Service) Verify(msg, sig []byte) error {
	if err := s.verifier.Verify(msg, sig); err != nil {
		return wire.ErrBadSignature
	}
	return nil
}

// Sign1 returns payload as a COSE_Sign1 by the CH key, kid = thumbprint.
func (s *Service) Sign1(aad, payload []byte) ([]byte, error) {
	defer s.timed("sign", time.Now())
	return wire.Sign1(s.priv, s.thumb[:], aad, payload)
}

// Nonce returns 16 fresh random bytes (CH nonces, session IDs).
func (s *Service) Nonce() ([]byte, error) {
	n := make([]byte, wire.NonceLen)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("failed to draw nonce: %w", err)
	}
	return n, nil
}
