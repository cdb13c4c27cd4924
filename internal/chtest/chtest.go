// Package chtest starts real cluster heads and devices for tests: UDP on
// 127.0.0.1, ledgers in temporary directories.
package chtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// Cluster is the test cluster's ID and position (Paris, 1 km radius).
const Cluster = "test-cluster"

// Position of the test CH and positions relative to it.
var (
	Here    = cluster.Position{Lat: 48_856_600, Lon: 2_352_200}
	Near    = cluster.Position{Lat: 48_860_000, Lon: 2_350_000} // ~400 m away
	Far     = cluster.Position{Lat: 48_956_600, Lon: 2_352_200} // ~11 km away
	Timeout = 20 * time.Second
)

// Start runs a CH on 127.0.0.1 with its data in dir (t.TempDir() if ""),
// after applying adjust (if any) to its configuration. Its admission is the
// default, enrolled: a device joins once the test enrolled it (Enroll,
// Enrolled, Joined), or Open makes the CH admit every join. The CH is closed
// when the test ends, unless the test closed it before (to restart it, say).
func Start(t testing.TB, dir string, adjust ...func(*clusterhead.Config)) *clusterhead.CH {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	// t.TempDir's directories have the umask's mode (0755): made private,
	// as an operator's data directory is, or Start refuses it.
	if err := os.Chmod(dir, 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	cfg := clusterhead.Config{
		Listen:  "127.0.0.1:0",
		DataDir: dir,
		Cluster: cluster.Config{ID: Cluster, Position: Here, Radius: 1000},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		NoAdmin: true,
	}
	for _, f := range adjust {
		f(&cfg)
	}
	ch, err := clusterhead.Start(cfg)
	if err != nil {
		t.Fatalf("start CH: %v", err)
	}
	t.Cleanup(func() {
		if err := ch.Close(); err != nil {
			t.Errorf("close CH: %v", err)
		}
	})
	return ch
}

// Open makes a CH admit every join (cluster.AdmissionOpen): for tests of
// something other than admission that join devices they do not enroll.
func Open(c *clusterhead.Config) { c.Cluster.Admission = cluster.AdmissionOpen }

// Enroll enrolls st's ID with st's key on ch, as an operator would.
func Enroll(t testing.TB, ch *clusterhead.CH, st *device.State) {
	t.Helper()
	key, err := wire.EncodePublicKey(&st.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Core.Enroll(Ctx(t), cluster.Enrollment{ID: st.ID, Key: key, Reason: "test"}); err != nil {
		t.Fatalf("enroll %s: %v", st.ID, err)
	}
}

// Enrolled returns a fresh in-memory device id, enrolled on ch and dialled
// to it.
func Enrolled(t testing.TB, ch *clusterhead.CH, id string) *device.Device {
	t.Helper()
	_, d := enrolled(t, ch, id)
	return d
}

// enrolled is Enrolled that also returns the device's state.
func enrolled(t testing.TB, ch *clusterhead.CH, id string) (*device.State, *device.Device) {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	Enroll(t, ch, st)
	return st, Dial(t, ch, st)
}

// Device returns a fresh in-memory device id dialled to ch (not enrolled).
func Device(t testing.TB, ch *clusterhead.CH, id string) *device.Device {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	return Dial(t, ch, st)
}

// Dial connects an existing device state to ch.
func Dial(t testing.TB, ch *clusterhead.CH, st *device.State) *device.Device {
	t.Helper()
	d, err := device.Dial(ch.Addr(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Joined returns a device id that has joined ch from a position inside it,
// enrolled first unless ch's admission is open.
func Joined(t testing.TB, ch *clusterhead.CH, id string) *device.Device {
	t.Helper()
	var d *device.Device
	if ch.Core.Config().Admission == cluster.AdmissionOpen {
		d = Device(t, ch, id)
	} else {
		d = Enrolled(t, ch, id)
	}
	join(t, d, id)
	return d
}

// join joins d, device id, from a position inside the cluster.
func join(t testing.TB, d *device.Device, id string) {
	t.Helper()
	if _, err := d.Join(Ctx(t), Near.Lat, Near.Lon); err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
}

// JoinedState returns a device id, enrolled on ch, that has joined it from a
// position inside it, and its state, which a test reads and seals requests
// with by hand.
func JoinedState(t testing.TB, ch *clusterhead.CH, id string) (*device.State, *device.Device) {
	t.Helper()
	st, d := enrolled(t, ch, id)
	join(t, d, id)
	return st, d
}

// JoinRequest returns a new device id and its join request for cluster at
// Near, with a random nonce and no echo yet; SignJoin signs it.
func JoinRequest(t testing.TB, cluster, id string) (*device.State, wire.JoinRequest) {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := wire.EncodePublicKey(&st.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	req := wire.JoinRequest{Cluster: cluster, ID: id, Key: key, Lat: Near.Lat, Lon: Near.Lon, Nonce: make([]byte, wire.NonceLen)}
	rand.Read(req.Nonce)
	return st, req
}

// SignJoin returns req as st's device sends it, signed with kid.
func SignJoin(t testing.TB, st *device.State, kid string, req *wire.JoinRequest) []byte {
	t.Helper()
	payload, err := wire.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.Sign1(st.Key, []byte(kid), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Ctx returns a context bounded by Timeout and the test's life.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Height returns the ledger height of ch once the audit records queued so
// far are written.
func Height(t testing.TB, ch *clusterhead.CH) uint64 {
	t.Helper()
	ch.Core.Flush()
	ref, _, err := ch.Ledger.Head()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Height
}

// Response is a raw CoAP answer.
type Response struct {
	Code       codes.Code
	Diagnostic string
	Body       []byte
	Echo       []byte
	Sealed     bool // Content-Format 16: a protected answer, or a sealed refusal
}

// Raw returns a plain CoAP client of ch, one source port for its life.
func Raw(t testing.TB, ch *clusterhead.CH) *client.Conn {
	t.Helper()
	conn, err := udp.Dial(ch.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Post sends one raw CoAP POST on conn.
func Post(t testing.TB, conn *client.Conn, path string, cf message.MediaType, body []byte) Response {
	t.Helper()
	resp, err := conn.Post(Ctx(t), path, cf, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return response(resp)
}

func response(resp *pool.Message) Response {
	r := Response{Code: resp.Code()}
	if resp.Body() != nil {
		r.Body, _ = resp.ReadBody()
		r.Diagnostic = string(r.Body)
	}
	if e, err := resp.Echo(); err == nil {
		r.Echo = append([]byte{}, e...)
	}
	if f, err := resp.ContentFormat(); err == nil {
		r.Sealed = f == message.AppCoseEncrypt0
	}
	return r
}

// Get sends GET path on conn as a client that follows RFC 9175 does: a 4.01
// with an Echo option (the CH verifying the source's address) is answered
// by the same request carrying that Echo, once. Response.Echo is the last
// Echo the CH gave.
func Get(t testing.TB, conn *client.Conn, path string, opts ...message.Option) Response {
	t.Helper()
	return verified(func(opts ...message.Option) Response { return get(t, conn, path, opts...) }, opts)
}

// PostVerified is Post as a client that follows RFC 9175 does (see Get).
func PostVerified(t testing.TB, conn *client.Conn, path string, cf message.MediaType, body []byte) Response {
	t.Helper()
	return verified(func(opts ...message.Option) Response {
		t.Helper()
		resp, err := conn.Post(Ctx(t), path, cf, bytes.NewReader(body), opts...)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return response(resp)
	}, nil)
}

// verified sends a request with do and, if it is answered 4.01 with an Echo
// option, once more carrying that Echo.
func verified(do func(opts ...message.Option) Response, opts []message.Option) Response {
	r := do(opts...)
	if r.Code == codes.Unauthorized && r.Echo != nil {
		challenge := r.Echo
		if r = do(append(opts, message.Option{ID: message.Echo, Value: challenge})...); r.Echo == nil {
			r.Echo = challenge
		}
	}
	return r
}

func get(t testing.TB, conn *client.Conn, path string, opts ...message.Option) Response {
	t.Helper()
	resp, err := conn.Get(Ctx(t), path, opts...)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return response(resp)
}

// Snapshot is the ledger's observable state: head, every index record and
// every enrollment.
type Snapshot struct {
	Head        ledger.BlockRef
	Devices     []ledger.Device
	Enrollments []ledger.Enrollment
}

// Snap reads ch's ledger state once the audit records queued so far are
// written.
func Snap(t testing.TB, ch *clusterhead.CH) Snapshot {
	t.Helper()
	ch.Core.Flush()
	var s Snapshot
	var err error
	if s.Head, _, err = ch.Ledger.Head(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Ledger.Devices(func(d ledger.Device) error { s.Devices = append(s.Devices, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := ch.Ledger.Enrollments(func(e ledger.Enrollment) error { s.Enrollments = append(s.Enrollments, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return s
}

// Unchanged fails the test if ch's ledger differs from before.
func Unchanged(t testing.TB, ch *clusterhead.CH, before Snapshot) {
	t.Helper()
	if after := Snap(t, ch); !reflect.DeepEqual(before, after) {
		t.Fatalf("ledger changed: head %d → %d, %d → %d devices, %d → %d enrollments", before.Head.Height, after.Head.Height,
			len(before.Devices), len(after.Devices), len(before.Enrollments), len(after.Enrollments))
	}
}

// AuditSince returns the audit records (session grants, warnings) ch
// committed to its ledger after before was taken, decoded, in ledger order;
// it commits what was open first.
func AuditSince(t testing.TB, ch *clusterhead.CH, before Snapshot) []ledger.Event {
	t.Helper()
	ch.Core.Flush()
	var recs []ledger.Event
	err := ch.Ledger.Blocks(before.Head.Height+1, func(b ledger.Block) error {
		for _, ev := range b.Events {
			if ev.Type != ledger.EventSessionBatch || ev.Device != ch.Core.Config().ID {
				continue
			}
			batch, err := ch.Grants.Events(ev.Batch)
			if err != nil {
				return err
			}
			recs = append(recs, batch...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
