package ledger_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

const testCluster = "tamper-cluster"

var errBadSig = errors.New("ecdsa: signature does not verify")

// ecKey is a real ES256-style block signer and verifier: ECDSA P-256 over
// SHA-256 of the message, ASN.1 signatures.
type ecKey struct{ priv *ecdsa.PrivateKey }

func newKey(t testing.TB) ecKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ecKey{priv}
}

func (k ecKey) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, k.priv, d[:])
}

func (k ecKey) Verify(msg, sig []byte) error {
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(&k.priv.PublicKey, d[:], sig) {
		return errBadSig
	}
	return nil
}

// clock is a settable time source, so block times are chosen by the test.
type clock struct{ ms atomic.Int64 }

func newClock(ms int64) *clock {
	c := &clock{}
	c.ms.Store(ms)
	return c
}

func (c *clock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// env is one ledger file with the key that signs it.
type env struct {
	path  string
	key   ecKey
	clock *clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return &env{
		path:  filepath.Join(t.TempDir(), "ledger.db"),
		key:   newKey(t),
		clock: newClock(1_700_000_000_000),
	}
}

func (e *env) options() ledger.Options {
	return ledger.Options{Cluster: testCluster, Signer: e.key, Verifier: e.key, Now: e.clock.Now}
}

// open opens the env's ledger with its default options changed by mods and
// closes it when the test ends.
func (e *env) open(t testing.TB, mods ...func(*ledger.Options)) *ledger.Bolt {
	t.Helper()
	opts := e.options()
	for _, m := range mods {
		m(&opts)
	}
	l, err := ledger.Open(e.path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// openReadOnly opens the env's ledger without a signer, as `iotguard ledger
// verify` does.
func (e *env) openReadOnly(t testing.TB) *ledger.Bolt {
	t.Helper()
	return e.open(t, func(o *ledger.Options) { o.Signer = nil })
}

var nonceCounter atomic.Uint64

// deviceKeys holds one P-256 key per key name, so that joins naming the
// same key name carry the same key.
var deviceKeys sync.Map // key name → *ecdsa.PrivateKey

func deviceKey(name string) *ecdsa.PrivateKey {
	if k, ok := deviceKeys.Load(name); ok {
		return k.(*ecdsa.PrivateKey)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	actual, _ := deviceKeys.LoadOrStore(name, k)
	return actual.(*ecdsa.PrivateKey)
}

// join returns a valid join of id with the key of keyName and a fresh device
// nonce, carrying its evidence: the device's signed join request.
func join(id, keyName string) ledger.Event {
	n := nonceCounter.Add(1)
	ev := ledger.Event{
		Type:        ledger.EventJoin,
		Device:      id,
		Time:        1_700_000_000_000,
		DeviceNonce: binary.BigEndian.AppendUint64(make([]byte, 8), n),
		CHNonce:     fmt.Appendf(nil, "ch-%d", n),
		Lat:         48_137_154,
		Lon:         11_576_124,
		Expires:     1_800_000_000,
	}
	return withEvidence(ev, testCluster, deviceKey(keyName))
}

// signedAt returns join ev as signed over an echo the CH made at ledger
// height h: its evidence is signed again, by the device key of ev.Key, over
// an echo stamped with h.
func signedAt(ev ledger.Event, h uint64) ledger.Event {
	ev.FreshAt = h
	var k *ecdsa.PrivateKey
	deviceKeys.Range(func(_, v any) bool {
		pub, _ := wire.EncodePublicKey(&v.(*ecdsa.PrivateKey).PublicKey)
		if string(pub) == string(ev.Key) {
			k = v.(*ecdsa.PrivateKey)
		}
		return k == nil
	})
	if k == nil {
		panic("signedAt: a join of a key not made by deviceKey")
	}
	return withEvidence(ev, testCluster, k)
}

// stampedEcho returns an echo value (internal/echo's layout: 4 bytes of unix
// seconds, 8 of ledger height, an 8-byte MAC only its CH can check) made at
// unix time sec, stamped with height h.
func stampedEcho(sec int64, h uint64) []byte {
	e := binary.BigEndian.AppendUint32(nil, uint32(sec))
	e = binary.BigEndian.AppendUint64(e, h)
	return append(e, "mac-mac-"...)
}

// signedNow returns join ev as signed over an echo made at l's head: a
// device that joins after everything l holds.
func signedNow(t testing.TB, l ledger.Ledger, ev ledger.Event) ledger.Event {
	t.Helper()
	head, _, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	return signedAt(ev, head.Height)
}

// withEvidence sets ev's key to k's and its evidence to a join request for
// cluster signed by k, matching ev, over an echo made in the second of
// ev.Time, stamped with ev.FreshAt.
func withEvidence(ev ledger.Event, cluster string, k *ecdsa.PrivateKey) ledger.Event {
	key, err := wire.EncodePublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	ev.Key = key
	req, err := wire.Marshal(&wire.JoinRequest{Cluster: cluster, ID: ev.Device, Key: key, Lat: ev.Lat, Lon: ev.Lon, Nonce: ev.DeviceNonce,
		Echo: stampedEcho(ev.Time/1000, ev.FreshAt)})
	if err != nil {
		panic(err)
	}
	if ev.Request, err = wire.Sign1(k, []byte(ev.Device), wire.AADJoinRequest, req); err != nil {
		panic(err)
	}
	return ev
}

func leave(id string) ledger.Event {
	return ledger.Event{Type: ledger.EventLeave, Device: id, Time: 1_700_000_000_001}
}

func revoke(id string) ledger.Event {
	return ledger.Event{Type: ledger.EventRevoke, Device: id, Time: 1_700_000_000_002, Reason: "stolen"}
}

func session(m2, m1 string) ledger.Event {
	return ledger.Event{Type: ledger.EventSession, Device: m2, Peer: m1, Time: 1_700_000_000_003,
		Expires: 1_700_000_600, SessionID: []byte("sid-" + m2 + m1)}
}

func warning(asker, subject string) ledger.Event {
	return ledger.Event{Type: ledger.EventVerifyWarning, Device: asker, Peer: subject, Time: 1_700_000_000_004,
		Reason: "revoked"}
}

// mustAppend appends ev and fails the test on error.
func mustAppend(t testing.TB, l ledger.Ledger, ev ledger.Event) ledger.BlockRef {
	t.Helper()
	ref, err := l.Append(t.Context(), ev)
	if err != nil {
		t.Fatalf("Append(%s %q): %v", ev.Type, ev.Device, err)
	}
	return ref
}

// mustVerify fails the test unless the ledger verifies.
func mustVerify(t testing.TB, l ledger.Ledger) {
	t.Helper()
	if err := l.Verify(t.Context(), nil); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// allBlocks returns every block from genesis.
func allBlocks(t testing.TB, l ledger.Ledger) []ledger.Block {
	t.Helper()
	var blocks []ledger.Block
	if err := l.Blocks(0, func(b ledger.Block) error {
		blocks = append(blocks, b)
		return nil
	}); err != nil {
		t.Fatalf("Blocks: %v", err)
	}
	return blocks
}

// allDevices returns every index record.
func allDevices(t testing.TB, l ledger.Ledger) []ledger.Device {
	t.Helper()
	var devices []ledger.Device
	if err := l.Devices(func(d ledger.Device) error {
		devices = append(devices, d)
		return nil
	}); err != nil {
		t.Fatalf("Devices: %v", err)
	}
	return devices
}

// gateSigner wraps a real signer; once armed, the first Sign waits until
// release is closed, so the test can queue events behind a block being
// committed.
type gateSigner struct {
	ledger.Signer
	armed   atomic.Bool
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGate(s ledger.Signer) *gateSigner {
	return &gateSigner{Signer: s, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateSigner) Sign(msg []byte) ([]byte, error) {
	if g.armed.Load() {
		g.once.Do(func() {
			close(g.entered)
			<-g.release
		})
	}
	return g.Signer.Sign(msg)
}

// failSigner wraps a real signer and fails while fail is set.
type failSigner struct {
	ledger.Signer
	fail atomic.Bool
}

var errSignerDown = errors.New("signer down")

func (f *failSigner) Sign(msg []byte) ([]byte, error) {
	if f.fail.Load() {
		return nil, errSignerDown
	}
	return f.Signer.Sign(msg)
}
