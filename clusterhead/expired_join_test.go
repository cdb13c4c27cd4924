package clusterhead_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/membership"
)

// TestPendingJoinAfterExpiry: a device's join is recorded but its answer
// never arrives, so the device keeps the nonce (State.PendingJoin) and joins
// with it again only after that membership expired. It must get a new
// membership (a new block, 2.01), not the expired one answered again as a
// duplicate (before the fix: 2.04 with an expiry in the past, then 4.03 on
// every request).
func TestPendingJoinAfterExpiry(t *testing.T) {
	var skew atomic.Int64 // how far the CH's clock (and the device's) is ahead
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Cluster.MemberTTL = time.Hour
		c.Cluster.Now = now
	})
	j := enrolledJoiner(t, ch, chtest.Raw(t, ch), "sensor-p")
	j.fresh()
	expect(t, j.post(j.sign(j.req.ID)), codes.Created, "") // the device never reads this answer
	first, err := ch.Ledger.Lookup("sensor-p")
	if err != nil {
		t.Fatal(err)
	}
	j.st.PendingJoin = &device.PendingJoin{Cluster: chtest.Cluster, Nonce: j.req.Nonce}

	skew.Store(int64(2 * time.Hour))
	d, err := device.Dial(ch.Addr(), j.st, device.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	resp, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
	if err != nil {
		t.Fatalf("join with the nonce of an expired membership: %v", err)
	}
	if !bytes.Equal(resp.DeviceNonce, j.req.Nonce) || resp.Height <= first.Joined.Height ||
		int64(resp.Expires) <= now().Unix() || bytes.Equal(resp.CHNonce, first.CHNonce) {
		t.Fatalf("answer %+v is not a new membership after block %d", resp, first.Joined.Height)
	}
	rec, err := ch.Ledger.Lookup("sensor-p")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Joined.Height != resp.Height || rec.StatusAt(now()) != membership.Member {
		t.Fatalf("ledger record %+v does not hold the new join", rec)
	}
	if _, err := d.Verify(chtest.Ctx(t), "sensor-p"); err != nil {
		t.Fatalf("member key of the new join: %v", err)
	}
}
