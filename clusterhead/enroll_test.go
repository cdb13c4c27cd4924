package clusterhead_test

import (
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// withAdmin gives a test CH its control socket.
func withAdmin(c *clusterhead.Config) { c.NoAdmin = false }

// enrollment is the request enrolling st's ID and key.
func enrollment(t *testing.T, st *device.State) cluster.Enrollment {
	t.Helper()
	key, err := wire.EncodePublicKey(&st.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return cluster.Enrollment{ID: st.ID, Key: key, Reason: "test"}
}

func newState(t *testing.T, id string) *device.State {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantCode fails unless err is the CoAP error code with diagnostic.
func wantCode(t *testing.T, err error, code codes.Code, diag string) {
	t.Helper()
	var ce *device.CodeError
	if !errors.As(err, &ce) || ce.Code != code || ce.Diagnostic != diag {
		t.Fatalf("got %v, want %v %q", err, code, diag)
	}
}

// TestEnrollWhileServing: through the control socket of a running CH, an
// operator enrolls a device (which then joins), lists enrollments, and
// removes one: the device's membership ends at once (its peer's /verify
// warns), it cannot rejoin, and refusals come back as errors.
func TestEnrollWhileServing(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir, withAdmin)
	ctx := chtest.Ctx(t)
	peer := chtest.Joined(t, ch, "peer")
	st := newState(t, "sensor-a")
	d := chtest.Dial(t, ch, st)
	before := chtest.Snap(t, ch)
	_, err := d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
	wantCode(t, err, codes.Forbidden, "not enrolled")
	chtest.Unchanged(t, ch, before)

	h, err := admin.Enroll(ctx, dir, enrollment(t, st))
	if err != nil || h != before.Head.Height+1 {
		t.Fatalf("enroll through the socket: height %d, %v", h, err)
	}
	if _, err := d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join after enrolling: %v", err)
	}
	list, err := admin.Enrollments(ctx, dir)
	if err != nil || len(list) != 2 || list[1].ID != "sensor-a" || list[1].Enrolled.Height != h {
		t.Fatalf("enrollments: %+v, %v", list, err)
	}
	if _, err := admin.Enroll(ctx, dir, enrollment(t, st)); !errors.Is(err, ledger.ErrEnrolled) {
		t.Errorf("enrolling twice: %v", err)
	}

	if _, err := admin.Unenroll(ctx, dir, "sensor-a", "decommissioned"); err != nil {
		t.Fatal(err)
	}
	v, err := peer.Verify(ctx, "sensor-a")
	if !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Revoked {
		t.Errorf("verify after removal: %+v, %v", v, err)
	}
	before = chtest.Snap(t, ch)
	_, err = d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
	wantCode(t, err, codes.Forbidden, "enrollment removed")
	chtest.Unchanged(t, ch, before)
	if _, err := admin.Unenroll(ctx, dir, "sensor-a", "again"); !errors.Is(err, ledger.ErrEnrollmentRemoved) {
		t.Errorf("removing twice: %v", err)
	}
	if _, err := admin.Enroll(ctx, dir, cluster.Enrollment{ID: "bad id", Key: []byte{1}}); !errors.Is(err, cluster.ErrMalformed) {
		t.Errorf("a malformed enrollment: %v", err)
	}
}

// TestEnrollOffline: on a stopped data directory the operator's enrollment
// is written to the ledger directly, signed by the CH key; the restarted CH
// admits the device. While the CH runs the ledger is locked, and without a
// server there is no control socket to reach.
func TestEnrollOffline(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	ctx := chtest.Ctx(t)
	st := newState(t, "sensor-a")
	if _, err := clusterhead.Enroll(ctx, dir, enrollment(t, st)); !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("offline enroll while the CH runs: %v, want ErrLocked", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Enroll(ctx, dir, enrollment(t, st)); !errors.Is(err, admin.ErrNotRunning) {
		t.Fatalf("enroll through the socket of a stopped CH: %v, want ErrNotRunning", err)
	}
	ref, err := clusterhead.Enroll(ctx, dir, enrollment(t, st))
	if err != nil {
		t.Fatal(err)
	}
	other := newState(t, "sensor-b")
	if _, err := clusterhead.Enroll(ctx, dir, enrollment(t, other)); err != nil {
		t.Fatal(err)
	}
	if _, err := clusterhead.Unenroll(ctx, dir, "sensor-b", "never installed"); err != nil {
		t.Fatal(err)
	}
	if _, err := clusterhead.Unenroll(ctx, dir, "nobody", "x"); !errors.Is(err, ledger.ErrNotEnrolled) {
		t.Errorf("offline removal of a never enrolled ID: %v", err)
	}
	if _, err := clusterhead.Enroll(ctx, t.TempDir(), enrollment(t, st)); err == nil {
		t.Error("offline enroll without a ledger succeeded")
	}

	ch = chtest.Start(t, dir)
	if e, err := ch.Ledger.Enrollment("sensor-a"); err != nil || e.Enrolled != ref {
		t.Fatalf("enrollment after restart: %+v, %v", e, err)
	}
	if _, err := chtest.Dial(t, ch, st).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join of the device enrolled offline: %v", err)
	}
	_, err = chtest.Dial(t, ch, other).Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
	wantCode(t, err, codes.Forbidden, "enrollment removed")
	if err := ch.Ledger.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
