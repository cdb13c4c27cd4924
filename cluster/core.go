// Package cluster is the cluster head's policy core: who may join (radius,
// freshness, identity binding), who may verify whom and get a session with
// whom, expiry, and the per-member replay state. It decodes nothing from the
// network and knows no CoAP; coapsrv calls it with payloads and maps its
// errors to codes. Keys are keysvc's; history and the rules of what may
// happen to a device are the ledger's state machine's.
package cluster

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/iotguard/iotguard/internal/boundlog"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Config is the cluster's policy.
type Config struct {
	ID         string        // cluster ID
	Position   Position      // the CH position
	Radius     float64       // metres; joins farther away are refused
	MemberTTL  time.Duration // membership lifetime from a join
	SessionTTL time.Duration // session lifetime from its grant
	Now        func() time.Time
	Logger     *slog.Logger // audit records that fail to commit; default slog.Default()
	// ReplayStates bounds the members whose replay window this process
	// keeps (~150 B each). The least recently active is evicted for a
	// newcomer once idle past an echo's lifetime, and then proves freshness
	// with an echo on its next request, as after a restart; until then a
	// newcomer is refused (ErrBusy).
	ReplayStates int
	// Admission says who may join (cluster/admission.go); the zero value
	// admits enrolled devices only.
	Admission Admission
	// FleetKeys are the fleet public keys whose credentials admit a join
	// when Admission is enrolled. The CH never holds their private keys.
	FleetKeys []*ecdsa.PublicKey
	// TalkProofs bounds the talk proofs this process remembers as spent
	// (~35 B each), each until it is stale (docs/PROTOCOL.md §5.1); when
	// that many are unexpired, /session refuses new proofs (ErrBusy).
	TalkProofs int
	// TalkProofsPerMember bounds the places in TalkProofs that one
	// initiator's proofs take; beyond, its new proofs are refused (ErrBusy)
	// until some expire.
	TalkProofsPerMember int
	// Grants keeps the audit records — session grants and warning verdicts
	// — and the core commits them to the ledger in batches (one
	// session-batch event per GrantBatch records or per GrantPeriod,
	// whichever comes first; ledger/grants.go). Required.
	Grants      GrantLog
	GrantBatch  int           // records per batch, 1..ledger.MaxGrantBatch; default DefaultGrantBatch
	GrantPeriod time.Duration // longest a batch stays open; default DefaultGrantPeriod
	// JoinRate bounds the joins whose signatures are checked, per second,
	// all sources together, in bursts of one second's worth, each source
	// within its share (cluster/joinrate.go; 0: no bound). Only a join
	// whose echo is fresh and that admission's screen passed takes a place;
	// one beyond the rate or its source's share is refused (ErrJoinRate)
	// before any signature check. Joins are the requests anyone may send
	// that cost the CH signature checks (the member-key derivations that
	// forged requests draw have a budget of their own in keysvc), so this
	// bounds what senders who are not members can make it spend on them,
	// however many addresses they have.
	JoinRate float64
}

// Defaults for Config fields left zero.
const (
	DefaultMemberTTL    = 24 * time.Hour
	DefaultSessionTTL   = 10 * time.Minute
	DefaultReplayStates = 1 << 16
	DefaultTalkProofs   = 1 << 16
	// DefaultTalkProofsPerMember lets an initiator hold 1,024 unexpired
	// proofs, more than eight new talks a second for a proof's two minutes
	// (a listener keeps 256 sessions): it takes 64 members in collusion to
	// fill DefaultTalkProofs.
	DefaultTalkProofsPerMember = 1024
	// DefaultJoinRate is iotguard serve's JoinRate. A join costs a CH
	// 0.2–0.5 ms of CPU (docs/PERFORMANCE.md), so joins at this rate take
	// at most about half of one core, and members' requests keep the rest
	// however many sources send joins; 10,000 devices rejoining after a
	// power cut are all in within about 10 s.
	DefaultJoinRate = 1000
)

// Keys is what the core needs of the CH's keys; *keysvc.Service implements
// it. The private key stays behind it.
type Keys interface {
	Thumbprint() [32]byte
	COSEKey() []byte
	Sign1(aad, payload []byte) ([]byte, error)
	Nonce() ([]byte, error)
	Echo(addr string, now time.Time, height uint64) []byte
	EchoFresh(echo []byte, addr string, now time.Time) (height uint64, fresh bool)
	OpenRequest(m keysvc.Member, req *protect.Request, path string) ([]byte, error)
	SealResponse(m keysvc.Member, req *protect.Request, path string, plaintext []byte) ([]byte, error)
	SealRefusal(m keysvc.Member, req *protect.Request, path, diag string) ([]byte, error)
	IssueSession(m1, m2 keysvc.Member, expires time.Time) (keysvc.Session, error)
	VerifyTalkProof(m keysvc.Member, responder string, p *wire.TalkProof, now time.Time) error
	PSK(m keysvc.Member) ([]byte, error)
	Rotations() [][]byte
}

// Ledger is what the core needs of the ledger; every ledger.Ledger
// implements it. Append is the only judge of whether an event applies.
type Ledger interface {
	Append(ctx context.Context, ev ledger.Event) (ledger.BlockRef, error)
	Lookup(id string) (ledger.Device, error)
	Enrollment(id string) (ledger.Enrollment, error)
	Head() (ledger.BlockRef, int64, error)
}

// Observer receives the outcomes the operator cares about. Implementations
// must be cheap and safe for concurrent use; reasons are low-cardinality
// words, never device IDs.
type Observer interface {
	VerifyWarning(reason string)
	SessionGranted()
	// Crypto times an operation: "verify" (join signatures) and
	// "ledger_append" (a durable append, commit wait included).
	Crypto(op string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) VerifyWarning(string)         {}
func (nopObserver) SessionGranted()              {}
func (nopObserver) Crypto(string, time.Duration) {}

// Core applies the cluster's policy. It is safe for concurrent use.
type Core struct {
	cfg    Config
	keys   Keys
	ledger Ledger
	obs    Observer

	fleet fleetKeys // Config.FleetKeys by kid

	mu      sync.Mutex                           // guards members and uncertain
	members *simplelru.LRU[string, *memberState] // replay state of members active in this process
	// uncertain holds the CH nonces of the joins whose append this process
	// left uncertain (ledger.ErrUncertain), by device ID: if one was
	// committed, its retry is a duplicate, yet no answer of this process
	// started its window or retired the device's previous keys.
	uncertain *simplelru.LRU[string, [][]byte]

	infoMu sync.Mutex
	info   []byte // the signed GET /cluster answer, once made; reset by a key rotation

	// keyMu keeps joins and key rotations apart: a join holds it (read)
	// from its append to its signed answer, a rotation (write) from its
	// append to the moment the new key serves joins. So a join's block and
	// its answer are under the same CH key.
	keyMu sync.RWMutex

	checkpoints checkpoints // the newest signed checkpoint (transparency.go)
	heads       heads       // the newest signed ledger head (public.go)

	grants   *grantBatcher    // the audit records, in batches
	warnings *boundlog.Logger // warning verdicts, at Info

	spent   *spentProofs                    // talk proofs accepted and not yet stale
	retired atomic.Pointer[func(id string)] // see OnKeyRetired; nil: nobody listens
	joins   *joinPlaces                     // Config.JoinRate; nil: no bound
}

// New returns a Core for cfg over the CH keys and ledger.
func New(cfg Config, keys Keys, l Ledger) (*Core, error) {
	if cfg.Radius <= 0 {
		return nil, fmt.Errorf("failed to configure cluster %s: radius must be positive", cfg.ID)
	}
	if cfg.Grants == nil {
		return nil, fmt.Errorf("failed to configure cluster %s: no grant log for its audit records", cfg.ID)
	}
	if cfg.MemberTTL == 0 {
		cfg.MemberTTL = DefaultMemberTTL
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReplayStates == 0 {
		cfg.ReplayStates = DefaultReplayStates
	}
	if cfg.TalkProofs == 0 {
		cfg.TalkProofs = DefaultTalkProofs
	}
	if cfg.TalkProofsPerMember == 0 {
		cfg.TalkProofsPerMember = DefaultTalkProofsPerMember
	}
	if cfg.GrantBatch == 0 {
		cfg.GrantBatch = DefaultGrantBatch
	}
	if cfg.GrantPeriod <= 0 {
		cfg.GrantPeriod = DefaultGrantPeriod
	}
	if cfg.GrantBatch < 1 || cfg.GrantBatch > ledger.MaxGrantBatch {
		return nil, fmt.Errorf("failed to configure cluster %s: grant batch %d outside 1..%d", cfg.ID, cfg.GrantBatch, ledger.MaxGrantBatch)
	}
	members, err := simplelru.NewLRU[string, *memberState](cfg.ReplayStates, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to configure cluster %s: replay states: %w", cfg.ID, err)
	}
	uncertain, err := simplelru.NewLRU[string, [][]byte](maxUncertainJoins, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to configure cluster %s: uncertain joins: %w", cfg.ID, err)
	}
	if cfg.Admission != AdmissionEnrolled && cfg.Admission != AdmissionOpen {
		return nil, fmt.Errorf("failed to configure cluster %s: %v", cfg.ID, cfg.Admission)
	}
	fleet, err := newFleetKeys(cfg.FleetKeys)
	if err != nil {
		return nil, fmt.Errorf("failed to configure cluster %s: %w", cfg.ID, err)
	}
	if cfg.JoinRate < 0 {
		return nil, fmt.Errorf("failed to configure cluster %s: join rate %g is negative", cfg.ID, cfg.JoinRate)
	}
	c := &Core{cfg: cfg, keys: keys, ledger: l, obs: nopObserver{}, fleet: fleet, members: members, uncertain: uncertain,
		spent: newSpentProofs(cfg.TalkProofs, cfg.TalkProofsPerMember)}
	if cfg.JoinRate > 0 {
		c.joins = newJoinPlaces(cfg.JoinRate)
	}
	c.grants = newGrantBatcher(cfg, c.append)
	c.warnings = boundlog.New(cfg.Logger, slog.LevelInfo, cfg.Now)
	return c, nil
}

// SetObserver installs o; call it before serving.
func (c *Core) SetObserver(o Observer) { c.obs = o }

// Config returns the effective configuration.
func (c *Core) Config() Config { return c.cfg }

// member returns the keysvc view of an index record.
func member(d ledger.Device) keysvc.Member {
	return keysvc.Member{ID: d.ID, Key: d.Key, DeviceNonce: d.DeviceNonce, CHNonce: d.CHNonce, Joined: d.Joined.Height}
}

// Revoke records the operator's revocation of id. Its member key dies with
// it. The ledger refuses an unknown or already revoked ID (ErrUnknownDevice,
// ErrRevoked).
func (c *Core) Revoke(ctx context.Context, id, reason string) (ledger.BlockRef, error) {
	ref, err := c.append(ctx, ledger.Event{Type: ledger.EventRevoke, Device: id, Time: c.cfg.Now().UnixMilli(), Reason: reason})
	if err != nil {
		return ref, fmt.Errorf("failed to revoke %s: %w", id, err)
	}
	c.forget(id)
	return ref, nil
}

// RotateKey records the rotation (a COSE_Sign1 by the key in force, made by
// keysvc) on the ledger; the ledger's signer puts the new key in force when
// the block commits. finish runs before joins resume, with the rotation's
// block (keysvc.FinishRotation). GET /cluster serves the new key after it.
func (c *Core) RotateKey(ctx context.Context, rotation []byte, finish func(ledger.BlockRef) error) (ledger.BlockRef, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	ref, err := c.append(ctx, ledger.Event{Type: ledger.EventRotate, Device: c.cfg.ID, Time: c.cfg.Now().UnixMilli(), Request: rotation})
	if err != nil {
		return ref, fmt.Errorf("failed to record key rotation: %w", err)
	}
	c.infoMu.Lock()
	c.info = nil
	c.infoMu.Unlock()
	return ref, finish(ref)
}

// append writes ev to the ledger, timing the durable append.
func (c *Core) append(ctx context.Context, ev ledger.Event) (ledger.BlockRef, error) {
	start := time.Now()
	ref, err := c.ledger.Append(ctx, ev)
	c.obs.Crypto("ledger_append", time.Since(start))
	return ref, err
}

// Admission names who may join this cluster ("enrolled" or "open"), as
// 'iotguard status' reports it (cluster/admission.go).
func (c *Core) Admission() string { return c.cfg.Admission.String() }
