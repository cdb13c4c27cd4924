package cluster_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// The cluster core is tested here without a socket or a file: a real
// keysvc.Service over an in-memory key, an in-memory ledger that applies
// ledger's own state machine, a settable clock and a recording observer.

const (
	clusterID = "cluster-t"
	addr      = "192.0.2.7:5683" // the client's source address (TEST-NET-1, never dialled)
)

var here = cluster.Position{Lat: 48_856_600, Lon: 2_352_200}

// memLedger is a ledger in memory: Append runs ledger.Apply, one event per
// block; it keeps every event so that tests can say what was written.
type memLedger struct {
	mu          sync.Mutex
	index       map[string]ledger.Device
	enrollments map[string]ledger.Enrollment
	events      []ledger.Event
	fail        error  // if set, Append fails with it and writes nothing
	broken      string // if set, looking this ID up fails (a damaged index)
	// uncertain, if set, makes Append record the event and then report
	// ledger.ErrUncertain, as a shared ledger does when its commit outlives
	// the caller's wait.
	uncertain bool
}

func newMemLedger() *memLedger {
	return &memLedger{index: map[string]ledger.Device{}, enrollments: map[string]ledger.Enrollment{}}
}

// memIndex is the state machine's view of a memLedger.
type memIndex struct{ m *memLedger }

func (x memIndex) Get(id string) (ledger.Device, bool, error) {
	d, ok := x.m.index[id]
	return d, ok, nil
}
func (x memIndex) Put(d ledger.Device) { x.m.index[d.ID] = d }
func (x memIndex) GetEnrollment(id string) (ledger.Enrollment, bool, error) {
	e, ok := x.m.enrollments[id]
	return e, ok, nil
}
func (x memIndex) PutEnrollment(e ledger.Enrollment) { x.m.enrollments[e.ID] = e }

func (m *memLedger) Append(_ context.Context, ev ledger.Event) (ledger.BlockRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return ledger.BlockRef{}, m.fail
	}
	h := uint64(len(m.events) + 1)
	ref := ledger.BlockRef{Height: h, Hash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, h))}
	if err := ledger.Apply(memIndex{m}, ev, ref); err != nil {
		return ledger.BlockRef{}, fmt.Errorf("failed to append %s event: %w", ev.Type, err)
	}
	m.events = append(m.events, ev)
	if m.uncertain {
		return ledger.BlockRef{}, fmt.Errorf("failed to append %s event: %w", ev.Type, ledger.ErrUncertain)
	}
	return ref, nil
}

func (m *memLedger) Lookup(id string) (ledger.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == m.broken {
		return ledger.Device{}, fmt.Errorf("device %q: index damaged", id)
	}
	d, ok := m.index[id]
	if !ok {
		return ledger.Device{}, fmt.Errorf("device %q: %w", id, ledger.ErrUnknownDevice)
	}
	return d, nil
}

func (m *memLedger) Enrollment(id string) (ledger.Enrollment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.enrollments[id]
	if !ok {
		return ledger.Enrollment{}, fmt.Errorf("enrollment of %q: %w", id, ledger.ErrNotEnrolled)
	}
	return e, nil
}

// breakLookup makes looking id up fail from now on.
func (m *memLedger) breakLookup(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.broken = id
}

func (m *memLedger) Head() (ledger.BlockRef, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := uint64(len(m.events))
	return ledger.BlockRef{Height: h, Hash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, h))}, 1, nil
}

// written returns how many events the ledger holds.
func (m *memLedger) written() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

// last returns the newest event.
func (m *memLedger) last() ledger.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events[len(m.events)-1]
}

// setCluster marks id as joined through another cluster (a shared ledger).
func (m *memLedger) setCluster(id, cluster string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.index[id]
	d.Cluster = cluster
	m.index[id] = d
}

// memGrants is a grant log in memory: it keeps every batch's records.
type memGrants struct {
	mu      sync.Mutex
	batches [][][]byte
}

func (g *memGrants) Write(records [][]byte, now time.Time) (ledger.GrantBatch, error) {
	root, err := ledger.GrantRoot(records)
	if err != nil {
		return ledger.GrantBatch{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.batches = append(g.batches, records)
	return ledger.GrantBatch{Seq: uint64(len(g.batches)), Count: uint64(len(records)), Root: root, TimeMS: now.UnixMilli()}, nil
}

func (g *memGrants) Committed(seq, height uint64) error { return nil }

// records returns every record written, decoded, in order.
func (g *memGrants) records(t testing.TB) []ledger.Event {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	var evs []ledger.Event
	for _, b := range g.batches {
		for _, rec := range b {
			var ev ledger.Event
			if err := wire.Unmarshal(rec, &ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

// observer records what the core reports.
type observer struct {
	mu       sync.Mutex
	warnings []string
	sessions int
	ops      map[string]int
}

func (o *observer) VerifyWarning(r string) {
	o.mu.Lock()
	o.warnings = append(o.warnings, r)
	o.mu.Unlock()
}
func (o *observer) SessionGranted() { o.mu.Lock(); o.sessions++; o.mu.Unlock() }
func (o *observer) Crypto(op string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ops == nil {
		o.ops = map[string]int{}
	}
	o.ops[op]++
}

// env is a core with its parts.
type env struct {
	t      testing.TB
	keys   *keysvc.Service
	ledger *memLedger
	grants *memGrants
	obs    *observer
	core   *cluster.Core
	now    time.Time
	cfg    cluster.Config
	log    *bytes.Buffer // what the core logs, without times
}

var chKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// newEnv returns a core with its parts. Its admission is open: the tests of
// the other rules (echo, signature, radius, the ledger's, protected
// requests) need no enrollment; the admission tests (admission_test.go)
// adjust it to enrolled, the default of cluster.Config.
func newEnv(t testing.TB, adjust ...func(*cluster.Config)) *env {
	t.Helper()
	keys, err := keysvc.New(chKey(), clusterID)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, keys: keys, ledger: newMemLedger(), grants: &memGrants{}, obs: &observer{}, now: time.Unix(1_800_000_000, 0), log: &bytes.Buffer{}}
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	e.cfg = cluster.Config{ID: clusterID, Position: here, Radius: 1000, Now: func() time.Time { return e.now },
		Admission: cluster.AdmissionOpen, Grants: e.grants, Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{ReplaceAttr: noTime}))}
	for _, f := range adjust {
		f(&e.cfg)
	}
	e.core = e.newCore()
	return e
}

// newCore returns another core over the same keys and ledger: the CH after
// a restart (its replay windows are gone).
func (e *env) newCore() *cluster.Core {
	e.t.Helper()
	c, err := cluster.New(e.cfg, e.keys, e.ledger)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	c.SetObserver(e.obs)
	return c
}

// oneRecord returns the one audit record written since the ledger held
// before events, after committing what was open: the ledger must have
// gained exactly one session-batch event, of that one record.
func (e *env) oneRecord(before int) ledger.Event {
	e.t.Helper()
	e.core.Flush()
	recs := e.grants.records(e.t)
	if n := e.ledger.written(); n != before+1 {
		e.t.Fatalf("%d events written, want one session batch", n-before)
	}
	if ev := e.ledger.last(); ev.Type != ledger.EventSessionBatch || ev.Count != 1 || len(recs) == 0 {
		e.t.Fatalf("last event %+v (%d records), want a session batch of one record", ev, len(recs))
	}
	return recs[len(recs)-1]
}

// advance moves the clock.
func (e *env) advance(d time.Duration) { e.now = e.now.Add(d) }

// dev is a device as the tests drive it: its state and next sequence number.
type dev struct {
	e    *env
	st   *device.State
	keys *protect.MemberKeys
}

func (e *env) device(id string) *dev {
	e.t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return &dev{e: e, st: st}
}

// joinRequest is a signed join of d at pos with a fresh nonce; mod may
// change the request before it is signed.
func (d *dev) joinRequest(pos cluster.Position, echo []byte, mod ...func(*wire.JoinRequest)) []byte {
	d.e.t.Helper()
	key, err := wire.EncodePublicKey(&d.st.Key.PublicKey)
	if err != nil {
		d.e.t.Fatal(err)
	}
	req := wire.JoinRequest{Cluster: clusterID, ID: d.st.ID, Key: key, Lat: pos.Lat, Lon: pos.Lon, Nonce: make([]byte, wire.NonceLen), Echo: echo}
	rand.Read(req.Nonce)
	for _, f := range mod {
		f(&req)
	}
	b, err := wire.Marshal(&req)
	if err != nil {
		d.e.t.Fatal(err)
	}
	signed, err := wire.Sign1(d.st.Key, []byte(d.st.ID), wire.AADJoinRequest, b)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return signed
}

// echo returns a fresh echo for the test client address.
func (e *env) echo() []byte { return e.core.Echo(addr) }

// join joins d at pos and returns the error; on success d keeps its member keys.
func (d *dev) join(pos cluster.Position) (cluster.JoinResult, error) {
	d.e.t.Helper()
	res, err := d.e.core.Join(d.e.t.Context(), d.joinRequest(pos, d.e.echo()), addr)
	if err == nil {
		d.accept(res)
	}
	return res, err
}

// mustJoin joins d at the CH's position.
func (d *dev) mustJoin() *dev {
	d.e.t.Helper()
	if _, err := d.join(here); err != nil {
		d.e.t.Fatalf("join %s: %v", d.st.ID, err)
	}
	return d
}

// accept checks a join answer as a device does and derives the member keys.
func (d *dev) accept(res cluster.JoinResult) *wire.JoinResponse {
	d.e.t.Helper()
	s, err := wire.ParseSign1(res.Response)
	if err != nil {
		d.e.t.Fatal(err)
	}
	if err := s.Verify(&chKey().PublicKey, wire.AADJoinResponse); err != nil {
		d.e.t.Fatalf("join answer: %v", err)
	}
	var resp wire.JoinResponse
	if err := wire.Decode(s.Payload, &resp); err != nil {
		d.e.t.Fatal(err)
	}
	d.st.Membership = &device.Membership{Cluster: resp.Cluster, CHKey: resp.CHKey, DeviceNonce: resp.DeviceNonce,
		CHNonce: resp.CHNonce, Height: resp.Height, BlockHash: resp.BlockHash, Expires: resp.Expires}
	d.st.Seq = 0
	if d.keys, err = d.st.MemberKeys(); err != nil {
		d.e.t.Fatal(err)
	}
	return &resp
}

// seal returns a protected request of d to path with the next sequence number.
func (d *dev) seal(path string, msg any) *protect.Outgoing {
	d.e.t.Helper()
	pt, err := wire.Marshal(msg)
	if err != nil {
		d.e.t.Fatal(err)
	}
	sent, err := protect.Seal(d.keys, clusterID, d.st.ID, d.st.Seq, path, pt)
	if err != nil {
		d.e.t.Fatal(err)
	}
	d.st.Seq++
	return sent
}

// call sends a protected request through serve and opens the answer into out.
func (d *dev) call(serve func(context.Context, []byte, string) ([]byte, error), path string, msg any, out wire.Validator) error {
	d.e.t.Helper()
	sent := d.seal(path, msg)
	resp, err := serve(d.e.t.Context(), sent.Body, addr)
	if err != nil {
		return err
	}
	pt, err := sent.OpenResponse(d.keys, resp)
	if err != nil {
		d.e.t.Fatalf("open %s answer: %v", path, err)
	}
	if err := wire.Decode(pt, out); err != nil {
		d.e.t.Fatalf("decode %s answer: %v", path, err)
	}
	return nil
}

func (d *dev) verify(peer string) (*wire.VerifyResponse, error) {
	var v wire.VerifyResponse
	err := d.call(d.e.core.Verify, protect.PathVerify, &wire.VerifyRequest{Peer: peer}, &v)
	return &v, err
}

func (d *dev) session(peer string) (*wire.SessionResponse, error) {
	var s wire.SessionResponse
	err := d.call(d.e.core.Session, protect.PathSession, &wire.SessionRequest{Peer: peer}, &s)
	return &s, err
}

func (d *dev) leave() (*wire.LeaveResponse, error) {
	var l wire.LeaveResponse
	err := d.call(d.e.core.Leave, protect.PathLeave, &wire.LeaveRequest{}, &l)
	return &l, err
}

// status returns id's standing on the ledger at the env's clock.
func (e *env) status(id string) membership.Status {
	d, err := e.ledger.Lookup(id)
	if errors.Is(err, ledger.ErrUnknownDevice) {
		return membership.Unknown
	}
	return d.StatusAt(e.now)
}

// wantRefusal checks that err is the rejection want with the given detail
// ("" for none), and that nothing was written since before.
func (e *env) wantRefusal(err, want error, detail string, before int) {
	e.t.Helper()
	if !errors.Is(err, want) {
		e.t.Fatalf("err = %v, want %v", err, want)
	}
	var r *cluster.Refusal
	switch {
	case detail == "" && errors.As(err, &r):
		e.t.Errorf("err %v has detail %q, want none", err, r.Detail)
	case detail != "" && (!errors.As(err, &r) || r.Detail != detail):
		e.t.Errorf("err %v: want detail %q", err, detail)
	}
	e.core.Flush()
	if n := e.ledger.written(); n != before {
		e.t.Errorf("ledger holds %d events after the rejection, was %d", n, before)
	}
}

// expire sets id's membership to end at t.
func (m *memLedger) expire(id string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.index[id]
	d.Expires = t.Unix()
	m.index[id] = d
}

// proof returns d's talk proof of asking responder to talk, made at at.
func (d *dev) proof(responder string, at time.Time) *wire.TalkProof {
	d.e.t.Helper()
	p, err := protect.NewTalkProof(d.keys.Talk, clusterID, d.st.ID, responder, at)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return p
}

// forward asks for a session with peer, forwarding peer's talk proof p, as
// a listener does for a hello (docs/PROTOCOL.md §5.1).
func (d *dev) forward(peer string, p *wire.TalkProof) (*wire.SessionResponse, error) {
	var s wire.SessionResponse
	err := d.call(d.e.core.Session, protect.PathSession, &wire.SessionRequest{Peer: peer, Proof: p}, &s)
	return &s, err
}
