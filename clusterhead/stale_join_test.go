package clusterhead_test

import (
	"crypto/rand"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// A join captured on the wire stays replayable for as long as its echo is
// fresh (60 s). Once the device's record has changed after that echo was
// made — it joined again, or left — the captured join is stale: refused with
// 4.01 "stale join" and a fresh Echo (which its sender cannot sign without
// the device key), nothing written (docs/PROTOCOL.md §3.1).

// withMetrics serves the CH's metrics on a loopback port.
func withMetrics(c *clusterhead.Config) { c.Metrics = "127.0.0.1:0" }

// joinAnswer decodes a 2.01/2.04 join answer and gives st its membership,
// as the device does.
func joinAnswer(t *testing.T, st *device.State, r chtest.Response) {
	t.Helper()
	s, err := wire.ParseSign1(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	var resp wire.JoinResponse
	if err := wire.Decode(s.Payload, &resp); err != nil {
		t.Fatal(err)
	}
	st.Membership = &device.Membership{Cluster: resp.Cluster, CHKey: resp.CHKey, DeviceNonce: resp.DeviceNonce,
		CHNonce: resp.CHNonce, Height: resp.Height, BlockHash: resp.BlockHash, Expires: resp.Expires}
	st.Seq = 0
}

// enrolledJoiner is newJoiner for a device the test enrolls on ch first (its
// admission is the default, enrolled).
func enrolledJoiner(t *testing.T, ch *clusterhead.CH, conn *client.Conn, id string) *joiner {
	t.Helper()
	j := newJoiner(t, conn, id)
	chtest.Enroll(t, ch, j.st)
	return j
}

// wantStale checks the answer to a stale join: 4.01 "stale join" with an
// Echo option the CH would accept from that source.
func wantStale(t *testing.T, r chtest.Response) {
	t.Helper()
	expect(t, r, codes.Unauthorized, "stale join")
	if r.Echo == nil {
		t.Fatal("stale join answered without an Echo option")
	}
}

// TestReplayedJoinAfterRejoin: an attacker keeps a device's join and drops
// its answer; the device joins again with a new nonce; the attacker replays
// the kept join from the device's address while its echo is still fresh.
// Before the fix this was recorded as a new join (2.01) and the device's
// current member key stopped working.
func TestReplayedJoinAfterRejoin(t *testing.T) {
	ch := chtest.Start(t, "", withMetrics)
	conn := chtest.Raw(t, ch)
	j := enrolledJoiner(t, ch, conn, "sensor-s")
	j.fresh()
	captured := j.sign(j.req.ID)
	expect(t, j.post(captured), codes.Created, "") // the attacker drops this answer

	d := chtest.Dial(t, ch, j.st) // the device tries again: a new join, a new nonce
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, ch)
	wantStale(t, j.post(captured))
	chtest.Unchanged(t, ch, before)
	if _, err := d.Verify(chtest.Ctx(t), "sensor-s"); err != nil {
		t.Fatalf("the device's member key stopped working: %v", err)
	}
	if got := rejections(t, ch)["stale"]; got != 1 {
		t.Errorf("stale join rejections counted %d, want 1", got)
	}
}

// TestReplayedJoinAfterLeave: a join replayed after the device left would
// make it a member again (before the fix: 2.01); it is stale.
func TestReplayedJoinAfterLeave(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	j := enrolledJoiner(t, ch, conn, "sensor-l")
	j.fresh()
	captured := j.sign(j.req.ID)
	r := j.post(captured)
	expect(t, r, codes.Created, "")
	joinAnswer(t, j.st, r)
	if _, err := chtest.Dial(t, ch, j.st).Leave(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, ch)
	wantStale(t, j.post(captured))
	chtest.Unchanged(t, ch, before)
	rec, err := ch.Ledger.Lookup("sensor-l")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != membership.Left {
		t.Fatalf("sensor-l is %v after the replay, want left", rec.Status)
	}
}

// TestStaleJoinRecovers: an honest device whose first answer was lost and
// that retries with a new nonce but the echo it already had is told its
// join is stale; it signs the new echo and gets in, and its member key works.
func TestStaleJoinRecovers(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	j := enrolledJoiner(t, ch, conn, "sensor-r")
	j.fresh()
	expect(t, j.post(j.sign(j.req.ID)), codes.Created, "") // answer lost
	rand.Read(j.req.Nonce)
	r := j.post(j.sign(j.req.ID))
	wantStale(t, r)
	j.req.Echo = r.Echo
	r = j.post(j.sign(j.req.ID))
	expect(t, r, codes.Created, "")
	joinAnswer(t, j.st, r)
	if _, err := chtest.Dial(t, ch, j.st).Verify(chtest.Ctx(t), "sensor-r"); err != nil {
		t.Fatalf("member key after the recovered join: %v", err)
	}
}

// TestLeaveThenRejoinAtOnce: the device library leaves and rejoins without
// pause, and joins again after a join whose answer it never read: each join
// signs an echo made after the device's latest event.
func TestLeaveThenRejoinAtOnce(t *testing.T) {
	ch := chtest.Start(t, "")
	j := enrolledJoiner(t, ch, chtest.Raw(t, ch), "sensor-q")
	j.fresh()
	expect(t, j.post(j.sign(j.req.ID)), codes.Created, "") // a join whose answer was lost
	d := chtest.Dial(t, ch, j.st)
	for i := range 3 {
		if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		if _, err := d.Leave(chtest.Ctx(t)); err != nil {
			t.Fatalf("leave %d: %v", i, err)
		}
	}
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Verify(chtest.Ctx(t), "sensor-q"); err != nil {
		t.Fatal(err)
	}
}

// laggingHead is the CH's bbolt ledger whose Head, once armed, answers one
// block short: the next echo the CH makes is stamped as if made before the
// latest block, as an echo handed out just before a device's event commits.
type laggingHead struct {
	ledger.Ledger
	lag atomic.Int32 // the next Head calls that lag
}

func (l *laggingHead) Head() (ledger.BlockRef, int64, error) {
	ref, t, err := l.Ledger.Head()
	if l.lag.Add(-1) >= 0 && ref.Height > 0 {
		ref = ledger.BlockRef{Height: ref.Height - 1}
	}
	return ref, t, err
}

// TestDeviceSignsStaleChallenge: the device library, handed an echo from
// before its latest ledger event, is told its join is stale and signs the
// echo that came with the refusal: joined, no help needed.
func TestDeviceSignsStaleChallenge(t *testing.T) {
	var l *laggingHead
	dir := t.TempDir()
	ch := chtest.Start(t, dir, withMetrics, func(c *clusterhead.Config) {
		c.Ledger = func(keys *keysvc.Service, onCommit func(uint64, int)) (ledger.Ledger, error) {
			b, err := ledger.Open(filepath.Join(dir, clusterhead.LedgerFile),
				ledger.Options{Cluster: chtest.Cluster, Signer: keys, Verifier: keys, OnCommit: onCommit})
			l = &laggingHead{Ledger: b}
			return l, err
		}
	})
	d := chtest.Joined(t, ch, "sensor-e")
	if _, err := d.Leave(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The echo the next join's GET /cluster carries predates the leave (the
	// GET is padded: answered at once, without a challenge's echo first).
	l.lag.Store(1)
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Verify(chtest.Ctx(t), "sensor-e"); err != nil {
		t.Fatal(err)
	}
	if got := rejections(t, ch)["stale"]; got != 1 {
		t.Errorf("stale join rejections counted %d, want 1: the join was not challenged", got)
	}
}
