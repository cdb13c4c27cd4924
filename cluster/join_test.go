package cluster_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// metresNorth returns the position d metres north of p on the cluster's sphere.
func metresNorth(p cluster.Position, d float64) cluster.Position {
	return cluster.Position{Lat: p.Lat + int64(d/cluster.EarthRadius*180/3.141592653589793*1e6), Lon: p.Lon}
}

// TestJoinRejections: every way a join is refused, each with its sentinel,
// and nothing written on the ledger.
func TestJoinRejections(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *env, d *dev)
		req    func(e *env, d *dev) []byte
		want   error
		detail string
	}{
		{name: "not a COSE_Sign1", req: func(*env, *dev) []byte { return []byte("garbage") },
			want: cluster.ErrMalformed, detail: "join is not a COSE_Sign1"},
		{name: "payload not a join", want: cluster.ErrMalformed, detail: "join payload",
			req: func(e *env, d *dev) []byte {
				b, _ := wire.Sign1(d.st.Key, []byte(d.st.ID), wire.AADJoinRequest, []byte{0xa0})
				return b
			}},
		{name: "key not a COSE_Key", want: cluster.ErrMalformed, detail: "join key",
			req: func(e *env, d *dev) []byte {
				return d.joinRequest(here, e.echo(), func(r *wire.JoinRequest) { r.Key = []byte{0xa1, 0x01, 0x02} })
			}},
		{name: "another cluster", want: cluster.ErrUnknownCluster,
			req: func(e *env, d *dev) []byte {
				return d.joinRequest(here, e.echo(), func(r *wire.JoinRequest) { r.Cluster = "cluster-x" })
			}},
		{name: "kid is not the ID", want: cluster.ErrBadSignature,
			req: func(e *env, d *dev) []byte {
				return d.joinRequest(here, e.echo(), func(r *wire.JoinRequest) { r.ID = "someone-else" })
			}},
		{name: "signed by another key", want: cluster.ErrBadSignature,
			req: func(e *env, d *dev) []byte {
				// d's ID, key and kid, but another device's signature.
				s, _ := wire.ParseSign1(d.joinRequest(here, e.echo()))
				b, _ := wire.Sign1(e.device("other").st.Key, s.KID, wire.AADJoinRequest, s.Payload)
				return b
			}},
		{name: "signed for another message type", want: cluster.ErrBadSignature,
			req: func(e *env, d *dev) []byte {
				s, _ := wire.ParseSign1(d.joinRequest(here, e.echo()))
				b, _ := wire.Sign1(d.st.Key, s.KID, wire.AADJoinResponse, s.Payload)
				return b
			}},
		{name: "outside radius", want: cluster.ErrOutsideRadius,
			req: func(e *env, d *dev) []byte { return d.joinRequest(metresNorth(here, 1010), e.echo()) }},
		{name: "id bound to another key", want: cluster.ErrConflict,
			setup: func(e *env, d *dev) { impostor(e, d.st.ID).mustJoin() },
			req:   func(e *env, d *dev) []byte { return d.joinRequest(here, e.echo()) }},
		{name: "revoked", want: cluster.ErrRevoked,
			setup: func(e *env, d *dev) {
				d.mustJoin()
				if _, err := e.core.Revoke(t.Context(), d.st.ID, "stolen"); err != nil {
					t.Fatal(err)
				}
			},
			req: func(e *env, d *dev) []byte { return d.joinRequest(here, e.echo()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.device("sensor-a")
			if tt.setup != nil {
				tt.setup(e, d)
			}
			before := e.ledger.written()
			statusBefore := e.status(d.st.ID)
			_, err := e.core.Join(t.Context(), tt.req(e, d), addr)
			e.wantRefusal(err, tt.want, tt.detail, before)
			if s := e.status(d.st.ID); s != statusBefore {
				t.Errorf("status of %s became %v, was %v", d.st.ID, s, statusBefore)
			}
		})
	}
}

// impostor is a device with id and a key of its own.
func impostor(e *env, id string) *dev { return e.device(id) }

// TestJoinEcho: a join is served only with an echo the CH made for the same
// source within keysvc.EchoLifetime; otherwise it is challenged with a fresh
// one and nothing is written.
func TestJoinEcho(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a")
	stale := e.echo()
	e.advance(keysvc.EchoLifetime + time.Second)
	for name, echo := range map[string][]byte{
		"none":           nil,
		"stale":          stale,
		"another source": e.core.Echo("192.0.2.8:5683"),
		"forged":         bytes.Repeat([]byte{7}, 12),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.core.Join(t.Context(), d.joinRequest(here, echo), addr)
			var challenge *cluster.EchoRequired
			if !errors.As(err, &challenge) || challenge.Reason != nil {
				t.Fatalf("join with %s echo: %v, want a plain echo challenge", name, err)
			}
			if _, fresh := e.keys.EchoFresh(challenge.Echo, addr, e.now); !fresh {
				t.Fatalf("join with %s echo: %v, want a fresh echo challenge", name, err)
			}
			if e.ledger.written() != 0 {
				t.Fatal("a challenged join was written")
			}
		})
	}
	if _, err := e.core.Join(t.Context(), d.joinRequest(here, e.echo()), addr); err != nil {
		t.Fatalf("join with a fresh echo: %v", err)
	}
}

// TestJoinRadius: the radius is measured on the great circle and inclusive;
// a join just inside is admitted, just outside refused, at any latitude.
func TestJoinRadius(t *testing.T) {
	for _, lat := range []int64{0, 48_856_600, 60_000_000, -75_000_000} {
		e := newEnv(t, func(c *cluster.Config) { c.Position = cluster.Position{Lat: lat, Lon: 2_352_200} })
		ch := e.cfg.Position
		// East-west offsets shrink with cos(latitude): a longitude offset of
		// 900 m at this latitude is much more than 900 m of degrees at the
		// equator's scale.
		east := func(m float64) cluster.Position {
			for dLon := int64(1); ; dLon++ {
				p := cluster.Position{Lat: ch.Lat, Lon: ch.Lon + dLon}
				if cluster.Distance(ch, p) >= m {
					return p
				}
			}
		}
		for _, tc := range []struct {
			pos  cluster.Position
			want error
		}{
			{ch, nil},
			{metresNorth(ch, 995), nil},
			{metresNorth(ch, 1005), cluster.ErrOutsideRadius},
			{metresNorth(ch, 1999), cluster.ErrOutsideRadius},
			{east(995), nil},
			{east(1005), cluster.ErrOutsideRadius},
		} {
			d := e.device(fmt.Sprintf("d-%d-%d", tc.pos.Lat, tc.pos.Lon))
			_, err := e.core.Join(t.Context(), d.joinRequest(tc.pos, e.echo()), addr)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("lat %d: join at %v (%.1f m) = %v, want %v", lat, tc.pos, cluster.Distance(ch, tc.pos), err, tc.want)
			}
		}
	}
}

// TestJoinRecorded: a join is on the ledger before the answer, with the
// device's key, nonces, position, the CH's expiry and the signed request as
// evidence; the answer is signed by the CH and names the block.
func TestJoinRecorded(t *testing.T) {
	e := newEnv(t, func(c *cluster.Config) { c.MemberTTL = 2 * time.Hour })
	d := e.device("sensor-a")
	pos := metresNorth(here, 300)
	req := d.joinRequest(pos, e.echo())
	res, err := e.core.Join(t.Context(), req, addr)
	if err != nil || !res.Created {
		t.Fatalf("join = %+v, %v", res, err)
	}
	resp := d.accept(res)
	ev := e.ledger.last()
	thumb := e.keys.Thumbprint()
	switch {
	case ev.Type != ledger.EventJoin || ev.Device != "sensor-a" || !bytes.Equal(ev.Request, req):
		t.Errorf("event %+v", ev)
	case ev.Lat != pos.Lat || ev.Lon != pos.Lon || ev.Time != e.now.UnixMilli():
		t.Errorf("event position/time %d,%d %d", ev.Lat, ev.Lon, ev.Time)
	case ev.Expires != e.now.Add(2*time.Hour).Unix() || resp.Expires != uint64(ev.Expires):
		t.Errorf("expiry: event %d, answer %d, want %d", ev.Expires, resp.Expires, e.now.Add(2*time.Hour).Unix())
	case !bytes.Equal(resp.CHNonce, ev.CHNonce) || !bytes.Equal(resp.DeviceNonce, ev.DeviceNonce):
		t.Errorf("answer nonces differ from the event's")
	case resp.Height != 1 || resp.Cluster != clusterID || !bytes.Equal(resp.Thumbprint, thumb[:]):
		t.Errorf("answer %+v", resp)
	}
	if e.status("sensor-a") != membership.Member {
		t.Errorf("status %v", e.status("sensor-a"))
	}
	if e.obs.ops["verify"] != 1 || e.obs.ops["ledger_append"] != 1 {
		t.Errorf("observed ops %v", e.obs.ops)
	}
}

// TestJoinReplayAnsweredAgain: the same signed join again (a retry whose
// answer was lost) gets the same answer, 2.04 (Created false), and writes
// nothing; a new join of the same device (fresh nonce) is a rejoin.
func TestJoinReplayAnsweredAgain(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a")
	req := d.joinRequest(here, e.echo())
	first, err := e.core.Join(t.Context(), req, addr)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.core.Join(t.Context(), req, addr)
	if err != nil || again.Created {
		t.Fatalf("replayed join = %+v, %v; want answered, not created", again, err)
	}
	if a, b := d.accept(first), d.accept(again); !bytes.Equal(a.CHNonce, b.CHNonce) || a.Height != b.Height {
		t.Errorf("the replay's answer names another join: %+v vs %+v", b, a)
	}
	if e.ledger.written() != 1 {
		t.Fatalf("%d events after a replayed join", e.ledger.written())
	}
	res, err := d.join(here)
	if err != nil || !res.Created || e.ledger.written() != 2 {
		t.Fatalf("rejoin = %+v, %v (%d events)", res, err, e.ledger.written())
	}
}

// TestJoinUncertainThenRetried: a join whose commit outlived the ledger's
// wait is answered ErrUncertain (not a rejection); the device's retry of the
// very same signed join is then answered from the ledger with the join it
// recorded (2.04, its CH nonce and block), and nothing is written twice.
func TestJoinUncertainThenRetried(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a")
	req := d.joinRequest(here, e.echo())
	e.ledger.uncertain = true
	if _, err := e.core.Join(t.Context(), req, addr); !errors.Is(err, cluster.ErrUncertain) {
		t.Fatalf("join whose commit outlived the wait: %v, want ErrUncertain", err)
	}
	e.ledger.uncertain = false
	e.advance(30 * time.Second) // the device waited, its echo is still fresh
	res, err := e.core.Join(t.Context(), req, addr)
	if err != nil || res.Created {
		t.Fatalf("retry of the same join = %+v, %v; want answered from the ledger", res, err)
	}
	rec, err := e.ledger.Lookup("sensor-a")
	if err != nil {
		t.Fatal(err)
	}
	if a := d.accept(res); !bytes.Equal(a.CHNonce, rec.CHNonce) || a.Height != rec.Joined.Height {
		t.Fatalf("the retry's answer %+v is not the recorded join %+v", a, rec)
	}
	if e.ledger.written() != 1 {
		t.Fatalf("%d events after a retried join, want 1", e.ledger.written())
	}
}

// TestJoinLedgerBusy: a shared ledger whose node would not take the join now
// (ledger.ErrBusy: its cluster's share of the mempool full) wrote nothing:
// the join is refused busy (5.03), not failed (5.00), and the device's
// resend of the same signed join is recorded once. Before, it was an
// internal error, which a device does not resend.
func TestJoinLedgerBusy(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a")
	req := d.joinRequest(here, e.echo())
	e.ledger.fail = fmt.Errorf("failed to submit transaction: %w", ledger.ErrBusy)
	_, err := e.core.Join(t.Context(), req, addr)
	var r *cluster.Refusal
	if !errors.As(err, &r) || !errors.Is(err, cluster.ErrBusy) || r.Detail != "ledger queue full" || e.ledger.written() != 0 {
		t.Fatalf("join while the ledger is busy: %v (%d events), want refused busy: ledger queue full, nothing written", err, e.ledger.written())
	}
	e.ledger.fail = nil
	if res, err := e.core.Join(t.Context(), req, addr); err != nil || !res.Created || e.ledger.written() != 1 {
		t.Fatalf("the resent join = %+v, %v (%d events)", res, err, e.ledger.written())
	}
}

// TestJoinRate: Config.JoinRate bounds the joins whose signatures are
// checked. A join over it is refused (ErrJoinRate, a busy refusal) before its
// signature is checked, and nothing is written; the same join is admitted
// once the rate allows. Joins challenged for an echo take none of its
// places: senders who cannot receive at an address cannot drain it.
func TestJoinRate(t *testing.T) {
	e := newEnv(t, func(c *cluster.Config) { c.JoinRate = 1 })
	a, b := e.device("sensor-a"), e.device("sensor-b")
	for range 10 {
		var challenge *cluster.EchoRequired
		if _, err := e.core.Join(t.Context(), b.joinRequest(here, nil), addr); !errors.As(err, &challenge) {
			t.Fatalf("join without an echo: %v, want an echo challenge", err)
		}
	}
	a.mustJoin()
	req := b.joinRequest(here, e.echo())
	checked := e.obs.ops["verify"]
	_, err := e.core.Join(t.Context(), req, addr)
	var r *cluster.Refusal
	if !errors.As(err, &r) || !errors.Is(err, cluster.ErrJoinRate) || !errors.Is(err, cluster.ErrBusy) || r.Detail != "too many joins" {
		t.Fatalf("join over the rate: %v, want refused busy: too many joins", err)
	}
	if e.ledger.written() != 1 || e.obs.ops["verify"] != checked {
		t.Fatalf("join over the rate: %d events, %d signatures checked; want 1 and %d", e.ledger.written(), e.obs.ops["verify"], checked)
	}
	e.advance(time.Second)
	if res, err := e.core.Join(t.Context(), req, addr); err != nil || !res.Created {
		t.Fatalf("the same join a second later = %+v, %v", res, err)
	}
}

// TestJoinRateShared: the join rate's places are shared among sources. In
// each second a source takes at most fifteen sixteenths of the rate over
// the sources that took places the second before: a source that sends as
// fast as it can leaves places to another, and two such sources leave
// places to a third. A source is an IPv4 address (any port) or an IPv6 /64.
func TestJoinRateShared(t *testing.T) {
	e := newEnv(t, func(c *cluster.Config) { c.JoinRate = 16 })
	n := 0
	joins := func(from string, tries int) (admitted int) {
		t.Helper()
		for range tries {
			n++
			d := e.device(fmt.Sprintf("sensor-%d", n))
			_, err := e.core.Join(t.Context(), d.joinRequest(here, e.core.Echo(from)), from)
			switch {
			case err == nil:
				admitted++
			case !errors.Is(err, cluster.ErrJoinRate):
				t.Fatalf("join from %s: %v", from, err)
			}
		}
		return admitted
	}
	a, a2, b, c := "192.0.2.7:5683", "192.0.2.7:40000", "[2001:db8:1:2::1]:5683", "[2001:db8:1:3::1]:5683"
	if got := joins(a, 20); got != 15 {
		t.Fatalf("first second, one source: %d joins checked, want its share, 15", got)
	}
	e.advance(time.Second)
	if got := joins(a, 10) + joins(a2, 10); got != 15 {
		t.Fatalf("next second, the same source (two ports): %d joins checked, want its share, 15", got)
	}
	if got := joins(b, 3); got != 1 {
		t.Fatalf("next second, another source: %d joins checked, want the one place left", got)
	}
	e.advance(time.Second)
	if got := joins(a, 10); got != 7 {
		t.Fatalf("third second: %d joins of the first source checked, want its share, 7", got)
	}
	if got := joins(b, 10); got != 7 {
		t.Fatalf("third second: %d joins of the second source checked, want its share, 7", got)
	}
	if got := joins("[2001:db8:1:2::ff]:1", 1); got != 0 {
		t.Fatal("third second: a join from the second source's /64 was checked beyond its share")
	}
	if got := joins(c, 5); got != 2 {
		t.Fatalf("third second: %d joins of a third source checked, want the 2 places left", got)
	}
}

// TestJoinRateInvalid: a negative join rate is a configuration error.
func TestJoinRateInvalid(t *testing.T) {
	e := newEnv(t)
	e.cfg.JoinRate = -1
	if _, err := cluster.New(e.cfg, e.keys, e.ledger); err == nil || !strings.Contains(err.Error(), "join rate") {
		t.Fatalf("New with a negative join rate: %v", err)
	}
}

// TestRejoinUncertainThenRetried: a rejoin whose append this process left
// uncertain, and whose retry is then answered from the ledger, still retires
// the device's previous keys (its coaps sessions end) and starts the new
// join's window, as a rejoin answered at once does.
func TestRejoinUncertainThenRetried(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a").mustJoin()
	var retired []string
	e.core.OnKeyRetired(func(id string) { retired = append(retired, id) })
	req := d.joinRequest(here, e.echo())
	e.ledger.uncertain = true
	if _, err := e.core.Join(t.Context(), req, addr); !errors.Is(err, cluster.ErrUncertain) {
		t.Fatalf("rejoin whose commit outlived the wait: %v, want ErrUncertain", err)
	}
	e.ledger.uncertain = false
	if len(retired) != 0 {
		t.Fatalf("keys retired before the rejoin's outcome is known: %v", retired)
	}
	res, err := e.core.Join(t.Context(), req, addr)
	if err != nil || res.Created {
		t.Fatalf("retry of the same rejoin = %+v, %v; want answered from the ledger", res, err)
	}
	if len(retired) != 1 || retired[0] != "sensor-a" {
		t.Fatalf("keys retired %v, want sensor-a's once", retired)
	}
	d.accept(res)
	if _, err := d.verify("sensor-a"); err != nil { // no echo: this process saw the join
		t.Fatalf("request under the new join: %v", err)
	}
	if _, err := e.core.Join(t.Context(), req, addr); err != nil || len(retired) != 1 {
		t.Fatalf("a second retry: %v, keys retired %v, want no more", err, retired)
	}
}

// TestRejoinWithAnExpiredMembershipsNonce: a join that repeats the device
// nonce of an expired membership is a new join (a new CH nonce, a new K_m):
// it starts a new replay window, whose sequence numbers start again at 0,
// and retires the keys of the membership before it.
func TestRejoinWithAnExpiredMembershipsNonce(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a")
	nonce := bytes.Repeat([]byte{7}, wire.NonceLen)
	withNonce := func(r *wire.JoinRequest) { r.Nonce = nonce }
	res, err := e.core.Join(t.Context(), d.joinRequest(here, e.echo(), withNonce), addr)
	if err != nil {
		t.Fatal(err)
	}
	d.accept(res)
	for range 5 {
		if _, err := d.verify("sensor-a"); err != nil {
			t.Fatal(err)
		}
	}
	var retired []string
	e.core.OnKeyRetired(func(id string) { retired = append(retired, id) })
	e.advance(cluster.DefaultMemberTTL + time.Second)
	res, err = e.core.Join(t.Context(), d.joinRequest(here, e.echo(), withNonce), addr)
	if err != nil || !res.Created {
		t.Fatalf("join with the expired membership's nonce: %+v, %v; want a new join", res, err)
	}
	d.accept(res)
	if _, err := d.verify("sensor-a"); err != nil {
		t.Errorf("first request of the new membership (seq 0): %v", err)
	}
	if len(retired) != 1 || retired[0] != "sensor-a" {
		t.Errorf("keys retired %v, want sensor-a's once", retired)
	}
}

// TestJoinMemberOfAnotherCluster: a shared ledger refuses the join of a
// device that is a current member of another cluster; the refusal says so
// and names that cluster, instead of "bound to another key".
func TestJoinMemberOfAnotherCluster(t *testing.T) {
	e := newEnv(t)
	d := e.device("sensor-a").mustJoin()
	e.ledger.setCluster("sensor-a", "cluster-x")
	e.ledger.fail = fmt.Errorf("device %q is a member of cluster %q: %w: %w", "sensor-a", "cluster-x", ledger.ErrOtherCluster, ledger.ErrConflict)
	_, err := d.join(here)
	var ref *cluster.Refusal
	if !errors.As(err, &ref) || ref.Reason != cluster.ErrOtherCluster || ref.Detail != "cluster-x" {
		t.Fatalf("join of another cluster's member: %v, want a refusal naming cluster-x", err)
	}
}

// TestJoinLedgerFailure: a ledger that cannot write fails the join as an
// internal error (no rejection sentinel), and no replay window starts.
func TestJoinLedgerFailure(t *testing.T) {
	e := newEnv(t)
	e.ledger.fail = errors.New("disk full")
	_, err := e.device("a").join(here)
	for _, s := range []error{cluster.ErrMalformed, cluster.ErrConflict, cluster.ErrRevoked, cluster.ErrBadSignature} {
		if errors.Is(err, s) {
			t.Fatalf("ledger failure reported as %v", s)
		}
	}
	if err == nil {
		t.Fatal("join succeeded without the ledger")
	}
}

// wantStale checks that err refuses a join as stale with a challenge the
// device can sign: an echo for addr stamped with the ledger's head.
func (e *env) wantStale(err error, before int) {
	e.t.Helper()
	e.wantRefusal(err, cluster.ErrStale, "", before)
	var challenge *cluster.EchoRequired
	if !errors.As(err, &challenge) {
		e.t.Fatalf("stale join refused without an echo: %v", err)
	}
	head, _, _ := e.ledger.Head()
	if h, fresh := e.keys.EchoFresh(challenge.Echo, addr, e.now); !fresh || h != head.Height {
		e.t.Fatalf("stale join challenged with echo of height %d (fresh %v), want the head %d", h, fresh, head.Height)
	}
}

// TestJoinStale: a join signed over an echo made before the device's latest
// ledger event is refused (ErrStale with a fresh echo) and writes nothing: a
// superseded join replayed after a rejoin or a leave. Before the fix both
// replays were recorded as new joins.
func TestJoinStale(t *testing.T) {
	t.Run("replayed after a rejoin", func(t *testing.T) {
		e := newEnv(t)
		d := e.device("sensor-a")
		captured := d.joinRequest(here, e.echo())
		if _, err := e.core.Join(t.Context(), captured, addr); err != nil {
			t.Fatal(err)
		}
		d.mustJoin() // the device's answer was dropped: it joins again
		before := e.ledger.written()
		_, err := e.core.Join(t.Context(), captured, addr)
		e.wantStale(err, before)
		if _, err := d.verify("sensor-a"); err != nil {
			t.Fatalf("the device's member key stopped working: %v", err)
		}
	})
	t.Run("replayed after a leave", func(t *testing.T) {
		e := newEnv(t)
		d := e.device("sensor-a")
		captured := d.joinRequest(here, e.echo())
		res, err := e.core.Join(t.Context(), captured, addr)
		if err != nil {
			t.Fatal(err)
		}
		d.accept(res)
		if _, err := d.leave(); err != nil {
			t.Fatal(err)
		}
		before := e.ledger.written()
		_, err = e.core.Join(t.Context(), captured, addr)
		e.wantStale(err, before)
		if s := e.status("sensor-a"); s != membership.Left {
			t.Fatalf("sensor-a is %v after the replay, want left", s)
		}
	})
	t.Run("a new nonce over an old echo, then the challenge", func(t *testing.T) {
		e := newEnv(t)
		d := e.device("sensor-a")
		echo := e.echo()
		if _, err := e.core.Join(t.Context(), d.joinRequest(here, echo), addr); err != nil {
			t.Fatal(err) // its answer was lost
		}
		before := e.ledger.written()
		_, err := e.core.Join(t.Context(), d.joinRequest(here, echo), addr)
		e.wantStale(err, before)
		var challenge *cluster.EchoRequired
		errors.As(err, &challenge)
		res, err := e.core.Join(t.Context(), d.joinRequest(here, challenge.Echo), addr)
		if err != nil || !res.Created {
			t.Fatalf("join over the challenge's echo = %+v, %v", res, err)
		}
		d.accept(res)
		if _, err := d.verify("sensor-a"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestJoinRecordsFreshness: the join event carries the height the echo it
// signed was stamped with, the ledger head when the CH made the echo.
func TestJoinRecordsFreshness(t *testing.T) {
	e := newEnv(t)
	e.device("sensor-a").mustJoin()
	e.device("sensor-b").mustJoin()
	echo := e.echo() // made at height 2
	e.device("sensor-c").mustJoin()
	if _, err := e.core.Join(t.Context(), e.device("sensor-d").joinRequest(here, echo), addr); err != nil {
		t.Fatal(err)
	}
	if got := e.ledger.last().FreshAt; got != 2 {
		t.Fatalf("join recorded freshness %d, want 2", got)
	}
}
