package device_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// Which cluster head key a device trusts, over real UDP against real cluster
// heads: two CHs of the same cluster ID with different keys play the CH the
// device knows and an impostor (or a CH whose key was replaced). They admit
// every join (chtest.Open): this is about the CH's key, not admission.

// thumb returns the thumbprint of ch's key.
func thumb(ch *clusterhead.CH) []byte {
	t := ch.Keys.Thumbprint()
	return t[:]
}

// dialFile dials ch with the device file path and opts.
func dialFile(t *testing.T, ch *clusterhead.CH, path string, opts ...device.Option) *device.Device {
	t.Helper()
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.Dial(ch.Addr(), st, append([]device.Option{device.WithStateFile(path)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newFile writes a fresh device file for id.
func newFile(t *testing.T, id string) string {
	t.Helper()
	st, err := device.NewState(id)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), id+".json")
	if err := st.Create(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantUntrusted checks that err refuses the CH whose thumbprint is got in
// favour of trusted, and that ch's ledger did not change.
func wantUntrusted(t *testing.T, err error, got, trusted []byte, pinned bool) {
	t.Helper()
	var u *device.UntrustedCHError
	if !errors.As(err, &u) || !errors.Is(err, device.ErrUntrustedCH) {
		t.Fatalf("err = %v, want an *UntrustedCHError", err)
	}
	if !bytes.Equal(u.Got, got) || !bytes.Equal(u.Trusted, trusted) || u.Pinned != pinned {
		t.Fatalf("refusal names got %x trusted %x pinned %v; want %x, %x, %v", u.Got, u.Trusted, u.Pinned, got, trusted, pinned)
	}
}

// TestPinRefusesOtherKey: a device pinned to a thumbprint joins no CH with
// another key, and the CH never sees its join; pinned to the CH's key, it
// joins. (Before this test no Go test exercised the pin: a copy of
// device/join.go without the check passed every test.)
func TestPinRefusesOtherKey(t *testing.T) {
	ch, other := chtest.Start(t, "", chtest.Open), chtest.Start(t, "", chtest.Open)
	path := newFile(t, "sensor-p")
	before := chtest.Snap(t, ch)
	_, err := dialFile(t, ch, path, device.WithPin(thumb(other))).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
	wantUntrusted(t, err, thumb(ch), thumb(other), true)
	chtest.Unchanged(t, ch, before)
	if st, err := device.LoadState(path); err != nil || st.Membership != nil || st.TrustedCH() != nil {
		t.Fatalf("refused device file: %+v, %v", st, err)
	}

	d := dialFile(t, ch, path, device.WithPin(thumb(ch)))
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join with the right pin: %v", err)
	}
	if st, _ := device.LoadState(path); !bytes.Equal(st.TrustedCH(), thumb(ch)) {
		t.Fatalf("device file trusts %x, want the pinned %x", st.TrustedCH(), thumb(ch))
	}
}

// TestTrustOnFirstUseIsFirst: an unpinned device trusts the CH key of its
// first join and refuses every other one afterwards — as a member, after it
// left, and for a state file from before devices kept the key — with nothing
// sent to the other CH and nothing changed in its own file. Before the fix it
// joined whatever CH answered. The operator's re-pin moves it; then the
// first CH is the stranger.
func TestTrustOnFirstUseIsFirst(t *testing.T) {
	a, b := chtest.Start(t, "", chtest.Open), chtest.Start(t, "", chtest.Open) // same cluster ID, different keys
	path := newFile(t, "sensor-t")
	if _, err := dialFile(t, a, path).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	joinB := func(opts ...device.Option) error {
		t.Helper()
		before := chtest.Snap(t, b)
		file := readFile(t, path)
		_, err := dialFile(t, b, path, opts...).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
		if err != nil {
			chtest.Unchanged(t, b, before)
			if !bytes.Equal(readFile(t, path), file) {
				t.Fatal("a refused join changed the device file")
			}
		}
		return err
	}

	t.Run("member", func(t *testing.T) {
		wantUntrusted(t, joinB(), thumb(b), thumb(a), false)
		_, _, err := dialFile(t, b, path).ClusterInfo(chtest.Ctx(t))
		wantUntrusted(t, err, thumb(b), thumb(a), false)
	})
	t.Run("a pin cannot override the trusted key", func(t *testing.T) {
		wantUntrusted(t, joinB(device.WithPin(thumb(b))), thumb(b), thumb(a), false)
	})
	t.Run("re-pin to another key", func(t *testing.T) {
		wantUntrusted(t, joinB(device.WithRepin(thumb(a))), thumb(b), thumb(a), true)
	})
	t.Run("state file without the trusted key", func(t *testing.T) {
		st, err := device.LoadState(path)
		if err != nil {
			t.Fatal(err)
		}
		st.Trusted = nil // as written before devices kept it: its membership names A's key
		if err := st.Save(path); err != nil {
			t.Fatal(err)
		}
		wantUntrusted(t, joinB(), thumb(b), thumb(a), false)
	})
	t.Run("after leaving", func(t *testing.T) {
		if _, err := dialFile(t, a, path).Leave(chtest.Ctx(t)); err != nil {
			t.Fatal(err)
		}
		wantUntrusted(t, joinB(), thumb(b), thumb(a), false)
	})
	t.Run("re-pin", func(t *testing.T) {
		if err := joinB(device.WithRepin(thumb(b))); err != nil {
			t.Fatalf("join after re-pin: %v", err)
		}
		d := dialFile(t, b, path)
		if _, err := d.Verify(chtest.Ctx(t), "sensor-t"); err != nil {
			t.Fatalf("member of the re-pinned CH: %v", err)
		}
		if st, _ := device.LoadState(path); !bytes.Equal(st.TrustedCH(), thumb(b)) {
			t.Fatalf("device file trusts %x after the re-pin, want %x", st.TrustedCH(), thumb(b))
		}
		before := chtest.Snap(t, a)
		_, err := dialFile(t, a, path).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
		wantUntrusted(t, err, thumb(a), thumb(b), false)
		chtest.Unchanged(t, a, before)
	})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrustFollowsRotation: a device that trusts its CH's key since its
// first join (no pin) follows a rotation signed by that key — it joins
// again, and re-keys, under the new key and trusts it from then on — and
// still refuses a CH whose key no rotation from it leads to.
func TestTrustFollowsRotation(t *testing.T) {
	ch, other := chtest.Start(t, "", chtest.Open), chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	path, keep := newFile(t, "sensor-r"), newFile(t, "sensor-k")
	if _, err := dialFile(t, ch, path).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	if _, err := dialFile(t, ch, keep).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	old := thumb(ch)
	if _, err := ch.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dialFile(t, ch, path).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("rejoin through the rotation: %v", err)
	}
	if changed, err := dialFile(t, ch, keep).Rekey(ctx); err != nil || !changed {
		t.Fatalf("rekey through the rotation: %v %v", changed, err)
	}
	for _, p := range []string{path, keep} {
		st, err := device.LoadState(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(st.TrustedCH(), thumb(ch)) || bytes.Equal(st.TrustedCH(), old) {
			t.Fatalf("%s trusts %x after the rotation, want the new key %x", st.ID, st.TrustedCH(), thumb(ch))
		}
	}
	before := chtest.Snap(t, other)
	_, err := dialFile(t, other, path).Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
	wantUntrusted(t, err, thumb(other), thumb(ch), false)
	chtest.Unchanged(t, other, before)
}
