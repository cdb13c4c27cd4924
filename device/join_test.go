package device_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// TestJoinAnswerAlreadyExpired: a join answer whose membership has expired
// by the device's clock is not a join. The device keeps no membership (its
// requests would all be refused 4.03) and drops the pending nonce, since the
// outcome is known; its state file says so.
func TestJoinAnswerAlreadyExpired(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open, func(c *clusterhead.Config) { c.Cluster.MemberTTL = time.Hour })
	path := newFile(t, "sensor-x")
	late := func() time.Time { return time.Now().Add(2 * time.Hour) } // the device's clock is ahead of the CH's
	d := dialFile(t, ch, path, device.WithClock(late))
	_, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
	if !errors.Is(err, device.ErrBadResponse) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("join answered with an expired membership: %v, want ErrBadResponse naming the expiry", err)
	}
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Membership != nil || st.PendingJoin != nil {
		t.Fatalf("device file after the refused answer: membership %+v, pending %+v; want neither", st.Membership, st.PendingJoin)
	}
	if _, err := d.Verify(chtest.Ctx(t), "sensor-x"); !errors.Is(err, device.ErrNotJoined) {
		t.Fatalf("verify after the refused answer: %v, want ErrNotJoined", err)
	}
}
