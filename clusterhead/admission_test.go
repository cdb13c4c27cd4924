package clusterhead_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/wire"
)

// settable is a clock a test moves.
type settable struct{ unix atomic.Int64 }

func (s *settable) now() time.Time { return time.Unix(s.unix.Load(), 0) }

func newFleet(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue returns a credential of fleet for st valid from nbf to naf, with mod
// applied before signing.
func issue(t *testing.T, fleet *ecdsa.PrivateKey, st *device.State, nbf, naf time.Time, mod ...func(*wire.Credential)) []byte {
	t.Helper()
	th := wire.Thumbprint(&st.Key.PublicKey)
	c := wire.Credential{ID: st.ID, Key: th[:], NotBefore: uint64(nbf.Unix()), NotAfter: uint64(naf.Unix())}
	for _, f := range mod {
		f(&c)
	}
	b, err := wire.IssueCredential(fleet, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rejections reads iotguard_join_rejections_total by reason from ch's metrics.
func rejections(t *testing.T, ch *clusterhead.CH) map[string]int {
	t.Helper()
	out := map[string]int{}
	for series, n := range chtest.Scrape(t, ch.MetricsAddr()) {
		if reason, ok := strings.CutPrefix(series, `iotguard_join_rejections_total{reason="`); ok {
			out[strings.TrimSuffix(reason, `"}`)] = n
		}
	}
	return out
}

// TestAdmissionRejectionsOverUDP: every admission refusal over CoAP — its
// code, its diagnostic, its reason counted in
// iotguard_join_rejections_total — and the ledger unchanged after each.
func TestAdmissionRejectionsOverUDP(t *testing.T) {
	fleet, untrusted := newFleet(t), newFleet(t)
	clock := &settable{}
	clock.unix.Store(time.Now().Unix())
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Metrics = "127.0.0.1:0"
		c.Cluster.Now = clock.now
		c.Cluster.FleetKeys = []*ecdsa.PublicKey{&fleet.PublicKey}
	})
	ctx := chtest.Ctx(t)
	now := clock.now()
	enroll := func(st *device.State, mod func(*cluster.Enrollment)) {
		r := enrollment(t, st)
		if mod != nil {
			mod(&r)
		}
		if _, err := ch.Core.Enroll(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	fixed := cluster.Position{Lat: chtest.Near.Lat + 3000, Lon: chtest.Near.Lon} // ~330 m north of Near
	cases := []struct {
		name   string
		setup  func(st *device.State) []byte // the credential to send, if any
		code   codes.Code
		diag   string
		reason string
	}{
		{"not enrolled", func(*device.State) []byte { return nil }, codes.Forbidden, "not enrolled", "not_enrolled"},
		{"enrolled with another key", func(st *device.State) []byte { enroll(newState(t, st.ID), nil); return nil },
			codes.Forbidden, "not enrolled", "enrolled_other_key"},
		{"enrollment expired", func(st *device.State) []byte {
			enroll(st, func(r *cluster.Enrollment) { r.Expires = now.Add(time.Hour) })
			clock.unix.Add(3600)
			return nil
		}, codes.Forbidden, "enrollment expired", "enrollment_expired"},
		{"enrollment removed", func(st *device.State) []byte {
			enroll(st, nil)
			if _, err := ch.Core.Unenroll(ctx, st.ID, "test"); err != nil {
				t.Fatal(err)
			}
			return nil
		}, codes.Forbidden, "enrollment removed", "enrollment_removed"},
		{"outside the enrolled position", func(st *device.State) []byte {
			enroll(st, func(r *cluster.Enrollment) { r.Position, r.Tolerance = &fixed, 50 })
			return nil
		}, codes.Forbidden, "outside enrolled position", "enrolled_position"},
		{"credential with a bad signature", func(st *device.State) []byte {
			s, _ := wire.ParseSign1(issue(t, fleet, st, now, now.Add(time.Hour)))
			b, _ := wire.Sign1(untrusted, wire.FleetKID(&fleet.PublicKey), wire.AADCredential, s.Payload)
			return b
		}, codes.Unauthorized, "bad credential signature", "credential_signature"},
		{"credential of an untrusted fleet key", func(st *device.State) []byte { return issue(t, untrusted, st, now, now.Add(time.Hour)) },
			codes.Unauthorized, "untrusted fleet key", "credential_untrusted"},
		{"credential expired", func(st *device.State) []byte { return issue(t, fleet, st, now.Add(-time.Hour), now) },
			codes.Unauthorized, "credential expired", "credential_expired"},
		{"credential not yet valid", func(st *device.State) []byte { return issue(t, fleet, st, now.Add(time.Minute), now.Add(time.Hour)) },
			codes.Unauthorized, "credential not yet valid", "credential_not_yet_valid"},
		{"credential for another ID", func(st *device.State) []byte {
			return issue(t, fleet, st, now, now.Add(time.Hour), func(c *wire.Credential) { c.ID = "someone-else" })
		}, codes.Unauthorized, "credential for another id", "credential_id"},
		{"credential for another key", func(st *device.State) []byte { return issue(t, fleet, newState(t, st.ID), now, now.Add(time.Hour)) },
			codes.Unauthorized, "credential for another key", "credential_key"},
		{"malformed credential", func(*device.State) []byte { return []byte("not a credential") },
			codes.BadRequest, "malformed credential", "credential_malformed"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.unix.Store(now.Unix())
			st := newState(t, fmt.Sprintf("dev-%d", i))
			var opts []device.Option
			if cred := tc.setup(st); cred != nil {
				opts = append(opts, device.WithCredential(cred))
			}
			d, err := device.Dial(ch.Addr(), st, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			before, counted := chtest.Snap(t, ch), rejections(t, ch)
			_, err = d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
			wantCode(t, err, tc.code, tc.diag)
			chtest.Unchanged(t, ch, before)
			if got := rejections(t, ch)[tc.reason]; got != counted[tc.reason]+1 {
				t.Errorf("rejections{reason=%q}: %d, was %d", tc.reason, got, counted[tc.reason])
			}
		})
	}
	// The controls: the same CH admits an enrolled device and a credentialed one.
	clock.unix.Store(now.Unix())
	st := newState(t, "enrolled")
	enroll(st, nil)
	if _, err := chtest.Dial(t, ch, st).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("enrolled device: %v", err)
	}
	st = newState(t, "credentialed")
	st.Credential = issue(t, fleet, st, now, now.Add(time.Hour))
	if _, err := chtest.Dial(t, ch, st).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("credentialed device: %v", err)
	}
}

// TestJoinsDoNotRevealEnrollments: someone without the enrolled key learns
// nothing of which IDs are enrolled. Before the echo (one per source address
// and round trip) the CH answers an enrolled and an unenrolled ID alike
// without looking them up; with a fresh echo and a valid signature of the
// prober's own key, both get the same code and diagnostic, byte for byte.
// Every probe costs a datagram under the per-source rate limit.
func TestJoinsDoNotRevealEnrollments(t *testing.T) {
	ch := chtest.Start(t, "")
	chtest.Enroll(t, ch, newState(t, "enrolled-7"))
	conn := chtest.Raw(t, ch)
	probe := func(id string, fresh bool) chtest.Response {
		j := newJoiner(t, conn, id)
		if fresh {
			j.fresh()
		}
		return j.post(j.sign(id))
	}
	for _, fresh := range []bool{false, true} {
		before := chtest.Snap(t, ch)
		a, b := probe("enrolled-7", fresh), probe("unknown-7", fresh)
		if a.Code != b.Code || !bytes.Equal(a.Body, b.Body) {
			t.Fatalf("fresh echo %v: enrolled ID answered %v %q, unenrolled %v %q", fresh, a.Code, a.Body, b.Code, b.Body)
		}
		want := codes.Forbidden
		if !fresh {
			want = codes.Unauthorized // echo required: nothing looked up yet
		}
		if a.Code != want {
			t.Fatalf("fresh echo %v: %v %q, want %v", fresh, a.Code, a.Body, want)
		}
		chtest.Unchanged(t, ch, before)
	}
}
