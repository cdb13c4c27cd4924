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
	"io"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/veraison/go-cose"
	"golang.org/x/time/rate"

	"github.com/iotguard/iotguard/internal/echo"
	"github.com/iotguard/iotguard/wire"
)

// Member keys are cached in two LRUs; a miss costs one ECDH (~50 µs) and an
// HKDF, so they are an optimisation, not state. An entry holds a member's
// three expanded AES-GCM keys (~2.4 KiB), so both stay under ~43 MiB however
// many members there are.
//
// IMPORTANT: only keys that authenticated a message of their member (a
// protected request, a talk proof) enter the cache of members in use, so
// nothing an unauthenticated sender sends can evict a member's keys from it.
// Keys derived for anything else (a message that failed, a ticket, a DTLS
// PSK) go to the small unproven cache: a forged datagram can churn only that
// one, and while it holds a member's keys, forgeries naming that member cost
// an AEAD each, no ECDH.
const (
	memberCacheSize   = 1 << 14 // keys that authenticated their member
	unprovenCacheSize = 1 << 10 // keys derived for anything else
)

// FailedDerivationRate bounds the work messages that do not authenticate
// can cost. A message naming a member whose keys are in neither cache is
// checked under keys derived for it (an ECDH and the HKDFs, ~80 µs:
// BenchmarkMemberKeysCold), and naming idle members in turn, a sender who
// holds no key, or spoofs its source, could make the CH derive keys for
// each datagram. A derivation for a message that then fails to authenticate
// spends one of FailedDerivationRate places a second (bursts of as many);
// one for a message that authenticates spends none. With no place left, a
// message whose member's keys are not cached is refused (ErrDerivationsBusy)
// before any ECDH (0.4 µs: BenchmarkForgedColdBounded): forgeries cost at
// most ~8% of a core in derivations, while members whose keys are cached —
// those active lately — are served as ever.
const FailedDerivationRate = 1000

// Service is the CH key service. It is safe for concurrent use.
//
// It holds the CH's keys oldest first: the last is the key in force (it signs
// blocks, joins and GET /cluster); the others are kept after a rotation
// because the member keys K_m of devices that joined under them are derived
// from them (docs/PROTOCOL.md §6.1).
type Service struct {
	cluster  string
	mu       sync.RWMutex
	keys     []*chKey                           // oldest first; never empty
	next     *chKey                             // drawn by PrepareRotation, until Rotated or AbortRotation
	echoes   *echo.Issuer                       // per process: echoes do not survive a restart, by design
	members  *lru.Cache[cacheKey, *memberEntry] // keys of members in use: they authenticated a message
	unproven *lru.Cache[cacheKey, *memberEntry] // keys derived for anything else
	rekeys   *rekeys                            // members that moved to a newer CH key
	failed   *rate.Limiter                      // places for derivations whose message fails (FailedDerivationRate)
	timer    func(op string, d time.Duration)
}

// chKey is one CH key pair and what is derived from it.
type chKey struct {
	priv     *ecdsa.PrivateKey
	ecdhPriv *ecdh.PrivateKey
	signer   cose.Signer
	verifier cose.Verifier
	coseKey  []byte
	thumb    [32]byte
	from     uint64 // first ledger height signed by it; joins from there on derive K_m with it
	rotation []byte // the rotation (COSE_Sign1 by the key before) that put it in force; nil for the first
}

func newCHKey(priv *ecdsa.PrivateKey, from uint64) (*chKey, error) {
	if priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("failed to use CH key: not a P-256 key")
	}
	k := &chKey{priv: priv, from: from}
	var err error
	if k.ecdhPriv, err = priv.ECDH(); err != nil {
		return nil, fmt.Errorf("failed to use CH key for ECDH: %w", err)
	}
	if k.signer, err = cose.NewSigner(cose.AlgorithmES256, priv); err != nil {
		return nil, fmt.Errorf("failed to make CH signer: %w", err)
	}
	if k.verifier, err = cose.NewVerifier(cose.AlgorithmES256, &priv.PublicKey); err != nil {
		return nil, fmt.Errorf("failed to make CH verifier: %w", err)
	}
	if k.coseKey, err = wire.EncodePublicKey(&priv.PublicKey); err != nil {
		return nil, err
	}
	k.thumb = wire.Thumbprint(&priv.PublicKey)
	return k, nil
}

// current returns the key in force.
func (s *Service) current() *chKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[len(s.keys)-1]
}

// keyOf returns the key with thumbprint thumb, nil if there is none.
func (s *Service) keyOf(thumb [32]byte) *chKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if k.thumb == thumb {
			return k
		}
	}
	return nil
}

// keyAt returns the key in force at ledger height h: the key a join in the
// block at h derived its member key with.
func (s *Service) keyAt(h uint64) *chKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.keys) - 1; i > 0; i-- {
		if h >= s.keys[i].from {
			return s.keys[i]
		}
	}
	return s.keys[0]
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

// Open loads the CH key of cluster from dir, creating it (0600) on first
// start, and the re-keys recorded there (RekeyFile). Close it when done.
func Open(dir, cluster string) (*Service, error) {
	return open(dir, cluster, true)
}

// OpenExisting is Open for a data directory that must already hold its key
// (it holds a ledger): a missing key is ErrNoKey, never replaced.
func OpenExisting(dir, cluster string) (*Service, error) {
	return open(dir, cluster, false)
}

// Load loads the CH key from dir for offline use (signature checks of the
// ledger), while a CH may run on dir; it fails with ErrNoKey if there is
// none. Member operations of the returned Service need the cluster ID and
// the re-keys, and must not be used.
func Load(dir string) (*Service, error) {
	keys, err := loadKeys(dir, false)
	if err != nil {
		return nil, err
	}
	return newService(keys, "", &rekeys{})
}

func open(dir, cluster string, create bool) (*Service, error) {
	keys, err := loadKeys(dir, create)
	if err != nil {
		return nil, err
	}
	r, err := loadRekeys(dir)
	if err != nil {
		return nil, err
	}
	return newService(keys, cluster, r)
}

// New returns a Service for cluster over priv, a P-256 key, kept in memory
// only (Open keeps it in a file). Tests of the cluster core use it.
func New(priv *ecdsa.PrivateKey, cluster string) (*Service, error) {
	k, err := newCHKey(priv, 0)
	if err != nil {
		return nil, err
	}
	return newService([]*chKey{k}, cluster, &rekeys{})
}

func newService(keys []*chKey, cluster string, r *rekeys) (*Service, error) {
	s := &Service{keys: keys, cluster: cluster, echoes: echo.New(), rekeys: r,
		failed: rate.NewLimiter(FailedDerivationRate, FailedDerivationRate)}
	var err error
	if s.members, err = lru.New[cacheKey, *memberEntry](memberCacheSize); err != nil {
		return nil, err
	}
	if s.unproven, err = lru.New[cacheKey, *memberEntry](unprovenCacheSize); err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases the record of re-keys. The Service must not be used after.
func (s *Service) Close() error { return s.rekeys.close() }

// BackupRekeys writes a consistent copy of RekeyFile to w, calling begin
// with its size first; it writes nothing when no member has re-keyed.
func (s *Service) BackupRekeys(w io.Writer, begin func(size int64) error) error {
	return s.rekeys.backup(w, begin)
}

// PublicKey returns the CH public key in force.
func (s *Service) PublicKey() *ecdsa.PublicKey { return &s.current().priv.PublicKey }

// COSEKey returns the CH public key in force as a COSE_Key.
func (s *Service) COSEKey() []byte { return s.current().coseKey }

// Thumbprint returns the RFC 9679 thumbprint of the CH public key in force.
func (s *Service) Thumbprint() [32]byte { return s.current().thumb }

// Keys returns every CH public key as a COSE_Key, oldest first, the key in
// force last. It implements ledger.KeyChain: Verify follows the ledger's
// rotations through them.
func (s *Service) Keys() [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([][]byte, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.coseKey
	}
	return out
}

// Rotations returns the latest rotations (at most wire.MaxRotations) that
// led to the key in force, oldest first: what GET /cluster carries for
// devices that pinned an older key.
func (s *Service) Rotations() [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out [][]byte
	for _, k := range s.keys[max(1, len(s.keys)-wire.MaxRotations):] {
		out = append(out, k.rotation)
	}
	return out
}

// Sign returns an ES256 signature (r ‖ s) over msg by the key in force. It
// implements ledger.Signer: blocks are signed with it.
func (s *Service) Sign(msg []byte) ([]byte, error) {
	return s.sign(s.current(), msg)
}

func (s *Service) sign(k *chKey, msg []byte) ([]byte, error) {
	defer s.timed("sign", time.Now())
	sig, err := k.signer.Sign(rand.Reader, msg)
	if err != nil {
		return nil, fmt.Errorf("failed to sign: %w", err)
	}
	return sig, nil
}

// Verify checks an ES256 signature by the key in force. It implements
// ledger.Verifier.
func (s *Service) Verify(msg, sig []byte) error {
	if err := s.current().verifier.Verify(msg, sig); err != nil {
		return wire.ErrBadSignature
	}
	return nil
}

// Sign1 returns payload as a COSE_Sign1 by the key in force, kid = its
// thumbprint.
func (s *Service) Sign1(aad, payload []byte) ([]byte, error) {
	defer s.timed("sign", time.Now())
	k := s.current()
	return wire.Sign1(k.priv, k.thumb[:], aad, payload)
}

// Nonce returns 16 fresh random bytes (CH nonces, session IDs).
func (s *Service) Nonce() ([]byte, error) {
	n := make([]byte, wire.NonceLen)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("failed to draw nonce: %w", err)
	}
	return n, nil
}
