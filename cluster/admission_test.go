package cluster_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// fleetKey returns a fresh fleet key (the operator's; the CH only ever sees
// its public half).
func fleetKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// enrolledEnv is an env whose CH admits enrolled devices only and trusts
// the given fleet keys.
func enrolledEnv(t *testing.T, fleets ...*ecdsa.PrivateKey) *env {
	return newEnv(t, func(c *cluster.Config) {
		c.Admission = cluster.AdmissionEnrolled
		for _, f := range fleets {
			c.FleetKeys = append(c.FleetKeys, &f.PublicKey)
		}
	})
}

// coseKey is d's public key as a COSE_Key.
func (d *dev) coseKey() []byte {
	d.e.t.Helper()
	k, err := wire.EncodePublicKey(&d.st.Key.PublicKey)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return k
}

// enroll enrolls d through the core, with mod applied to the request.
func (d *dev) enroll(mod ...func(*cluster.Enrollment)) *dev {
	d.e.t.Helper()
	r := cluster.Enrollment{ID: d.st.ID, Key: d.coseKey(), Reason: "test"}
	for _, f := range mod {
		f(&r)
	}
	if _, err := d.e.core.Enroll(d.e.t.Context(), r); err != nil {
		d.e.t.Fatalf("enroll %s: %v", d.st.ID, err)
	}
	return d
}

// credential returns a credential for d issued by fleet, valid from nbf to
// naf (unix seconds), with mod applied before signing.
func (d *dev) credential(fleet *ecdsa.PrivateKey, nbf, naf int64, mod ...func(*wire.Credential)) []byte {
	d.e.t.Helper()
	th := wire.Thumbprint(&d.st.Key.PublicKey)
	c := wire.Credential{ID: d.st.ID, Key: th[:], NotBefore: uint64(nbf), NotAfter: uint64(naf)}
	for _, f := range mod {
		f(&c)
	}
	b, err := wire.IssueCredential(fleet, c)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return b
}

// joinWith joins d at pos carrying cred (nil: none).
func (d *dev) joinWith(pos cluster.Position, cred []byte) (cluster.JoinResult, error) {
	d.e.t.Helper()
	res, err := d.e.core.Join(d.e.t.Context(), d.joinRequest(pos, d.e.echo(), func(r *wire.JoinRequest) { r.Credential = cred }), addr)
	if err == nil {
		d.accept(res)
	}
	return res, err
}

// TestAdmission: every way the enrolled admission policy admits or refuses
// a join, each refusal with its sentinel and nothing written on the ledger,
// and how many ES256 verifications each join cost (a credential adds at
// most one; a join no fleet key or enrollment could admit costs none).
func TestAdmission(t *testing.T) {
	fleetA, fleetB, untrusted := fleetKey(t), fleetKey(t), fleetKey(t)
	now := time.Unix(1_800_000_000, 0).Unix() // newEnv's clock
	hour := int64(3600)
	valid := func(d *dev, f *ecdsa.PrivateKey) []byte { return d.credential(f, now-hour, now+hour) }
	tests := []struct {
		name  string
		setup func(e *env, d *dev) []byte // returns the credential to send, if any
		pos   cluster.Position
		want  error // nil: admitted
		// verifies is the ES256 verifications the join cost: none for a
		// refusal admission decides before the signature (screen), one for
		// the join's signature, one more for a credential's
		verifies int
	}{
		{name: "enrolled", setup: func(e *env, d *dev) []byte { d.enroll(); return nil }, verifies: 1},
		{name: "not enrolled", want: cluster.ErrNotEnrolled},
		{name: "enrolled with another key", want: cluster.ErrEnrolledOtherKey,
			setup: func(e *env, d *dev) []byte { e.device(d.st.ID).enroll(); return nil }},
		{name: "enrollment of another ID", want: cluster.ErrNotEnrolled,
			setup: func(e *env, d *dev) []byte {
				e.device("sensor-b").enroll(func(r *cluster.Enrollment) { r.Key = d.coseKey() })
				return nil
			}},
		{name: "enrolled by another cluster", want: cluster.ErrNotEnrolled,
			setup: func(e *env, d *dev) []byte {
				d.enroll()
				e.ledger.setEnrollmentCluster(d.st.ID, "cluster-x")
				return nil
			}},
		{name: "enrollment expired", want: cluster.ErrEnrollmentExpired, verifies: 1,
			setup: func(e *env, d *dev) []byte {
				d.enroll(func(r *cluster.Enrollment) { r.Expires = e.now.Add(time.Minute) })
				e.advance(time.Minute)
				return nil
			}},
		{name: "a second before the enrollment expires", verifies: 1,
			setup: func(e *env, d *dev) []byte {
				d.enroll(func(r *cluster.Enrollment) { r.Expires = e.now.Add(time.Minute) })
				e.advance(time.Minute - time.Second)
				return nil
			}},
		{name: "enrollment removed", want: cluster.ErrEnrollmentRemoved, verifies: 1,
			setup: func(e *env, d *dev) []byte {
				d.enroll()
				if _, err := e.core.Unenroll(t.Context(), d.st.ID, "test"); err != nil {
					t.Fatal(err)
				}
				return nil
			}},
		{name: "inside the enrolled position", pos: metresNorth(here, 290), verifies: 1,
			setup: func(e *env, d *dev) []byte { d.enrollAt(metresNorth(here, 300), 20); return nil }},
		{name: "outside the enrolled position", pos: metresNorth(here, 270), want: cluster.ErrOutsideEnrolledPosition, verifies: 1,
			setup: func(e *env, d *dev) []byte { d.enrollAt(metresNorth(here, 300), 20); return nil }},

		{name: "fleet credential", setup: func(e *env, d *dev) []byte { return valid(d, fleetA) }, verifies: 2},
		{name: "credential of the second trusted fleet key", setup: func(e *env, d *dev) []byte { return valid(d, fleetB) }, verifies: 2},
		{name: "credential of an untrusted fleet key", want: cluster.ErrCredentialUntrusted,
			setup: func(e *env, d *dev) []byte { return valid(d, untrusted) }},
		{name: "credential signed by another key under a trusted kid", want: cluster.ErrCredentialSignature, verifies: 2,
			setup: func(e *env, d *dev) []byte {
				s, _ := wire.ParseSign1(valid(d, fleetA))
				b, _ := wire.Sign1(untrusted, wire.FleetKID(&fleetA.PublicKey), wire.AADCredential, s.Payload)
				return b
			}},
		{name: "credential expired", want: cluster.ErrCredentialExpired,
			setup: func(e *env, d *dev) []byte { return d.credential(fleetA, now-hour, now) }},
		{name: "credential in its last second", verifies: 2,
			setup: func(e *env, d *dev) []byte { return d.credential(fleetA, now-hour, now+1) }},
		{name: "credential not yet valid", want: cluster.ErrCredentialNotYetValid,
			setup: func(e *env, d *dev) []byte { return d.credential(fleetA, now+1, now+hour) }},
		{name: "credential from this second", verifies: 2,
			setup: func(e *env, d *dev) []byte { return d.credential(fleetA, now, now+hour) }},
		{name: "credential for another ID", want: cluster.ErrCredentialOtherID,
			setup: func(e *env, d *dev) []byte {
				return d.credential(fleetA, now-hour, now+hour, func(c *wire.Credential) { c.ID = "sensor-b" })
			}},
		{name: "credential for another key", want: cluster.ErrCredentialOtherKey,
			setup: func(e *env, d *dev) []byte {
				th := wire.Thumbprint(&fleetB.PublicKey)
				return d.credential(fleetA, now-hour, now+hour, func(c *wire.Credential) { c.Key = th[:] })
			}},
		{name: "malformed credential", want: cluster.ErrCredentialMalformed,
			setup: func(e *env, d *dev) []byte { return []byte("not a credential") }},
		{name: "bad credential of an enrolled device", want: cluster.ErrCredentialMalformed,
			setup: func(e *env, d *dev) []byte { d.enroll(); return []byte{0xa0} }},
		{name: "the enrollment governs a credentialed device", want: cluster.ErrEnrolledOtherKey, verifies: 2,
			setup: func(e *env, d *dev) []byte { e.device(d.st.ID).enroll(); return valid(d, fleetA) }},
		{name: "an expired enrollment governs a credentialed device", want: cluster.ErrEnrollmentExpired, verifies: 2,
			setup: func(e *env, d *dev) []byte {
				d.enroll(func(r *cluster.Enrollment) { r.Expires = e.now.Add(time.Second) })
				e.advance(time.Second)
				return valid(d, fleetA)
			}},
		{name: "credential of an ID bound to another key", want: cluster.ErrConflict, verifies: 2,
			setup: func(e *env, d *dev) []byte {
				other := e.device(d.st.ID)
				if _, err := other.joinWith(here, valid(other, fleetA)); err != nil {
					t.Fatal(err)
				}
				return valid(d, fleetA)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := enrolledEnv(t, fleetA, fleetB)
			d := e.device("sensor-a")
			var cred []byte
			if tt.setup != nil {
				cred = tt.setup(e, d)
			}
			pos := tt.pos
			if pos == (cluster.Position{}) {
				pos = here
			}
			before, verifies := e.ledger.written(), e.obs.ops["verify"]
			statusBefore := e.status(d.st.ID)
			res, err := d.joinWith(pos, cred)
			if n := e.obs.ops["verify"] - verifies; n != tt.verifies {
				t.Errorf("%d ES256 verifications, want %d", n, tt.verifies)
			}
			if tt.want != nil {
				e.wantRefusal(err, tt.want, "", before)
				if s := e.status(d.st.ID); s != statusBefore {
					t.Errorf("status of %s became %v, was %v", d.st.ID, s, statusBefore)
				}
				return
			}
			if err != nil || !res.Created {
				t.Fatalf("join = %+v, %v; want admitted", res, err)
			}
			if e.status(d.st.ID) != membership.Member {
				t.Errorf("status %v after an admitted join", e.status(d.st.ID))
			}
		})
	}
}

// enrollAt enrolls d with a fixed position and tolerance in metres.
func (d *dev) enrollAt(p cluster.Position, tolerance uint64) *dev {
	return d.enroll(func(r *cluster.Enrollment) { r.Position, r.Tolerance = &p, tolerance })
}

// setEnrollmentCluster marks id's enrollment as made by another cluster (a
// shared ledger).
func (m *memLedger) setEnrollmentCluster(id, cluster string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.enrollments[id]
	e.Cluster = cluster
	m.enrollments[id] = e
}

// TestOpenAdmission: open admits a join that is neither enrolled nor
// credentialed, and does not look at a credential it carries; the ledger's
// history rules still hold (an ID enrolled with another key stays bound).
func TestOpenAdmission(t *testing.T) {
	e := newEnv(t)
	if _, err := e.device("a").joinWith(here, []byte("not a credential")); err != nil {
		t.Fatalf("open join with garbage credential: %v", err)
	}
	e.device("b").enroll()
	before := e.ledger.written()
	_, err := e.device("b").joinWith(here, nil)
	e.wantRefusal(err, cluster.ErrConflict, "", before)
	if e.obs.ops["verify"] != 2 {
		t.Errorf("%d verifications for two joins in open mode", e.obs.ops["verify"])
	}
}

// TestSquattingDefeated is the attack of docs/SECURITY.md ("Joining is
// open"): an attacker joins as sensor-7 before the real sensor-7. With
// enrolled admission the squatter is refused, nothing is written, and the
// real, enrolled device joins. A squatter who got the ID while joining was
// open is evicted by enrolling the real key with Replace.
func TestSquattingDefeated(t *testing.T) {
	e := enrolledEnv(t)
	real, squatter := e.device("sensor-7"), e.device("sensor-7")
	real.enroll()
	before := e.ledger.written()
	_, err := squatter.joinWith(here, nil)
	e.wantRefusal(err, cluster.ErrEnrolledOtherKey, "", before)
	if _, err := real.joinWith(here, nil); err != nil {
		t.Fatalf("the enrolled device's join: %v", err)
	}
}

// TestReplaceEvictsSquatter: on a CH that was open, a squatter took
// sensor-7; the operator enrolls the real key with Replace. The squatter's
// membership ends (its protected requests are refused, its peers' /verify
// warns), it cannot rejoin, and the real device joins.
func TestReplaceEvictsSquatter(t *testing.T) {
	e := newEnv(t) // open: how the squatter got in
	squatter := e.device("sensor-7").mustJoin()
	peer := e.device("peer").mustJoin()
	e.cfg.Admission = cluster.AdmissionEnrolled // the operator closes joining (a restart with --admission enrolled)
	e.core = e.newCore()
	real := e.device("sensor-7")
	before := e.ledger.written()
	_, err := real.joinWith(here, nil)
	e.wantRefusal(err, cluster.ErrNotEnrolled, "", before)

	real.enroll(func(r *cluster.Enrollment) { r.Replace = true })
	if s := e.status("sensor-7"); s != membership.Revoked {
		t.Fatalf("squatter's status after replace: %v", s)
	}
	// The peer's first request to the restarted CH carries an echo.
	_, err = peer.verify("sensor-7")
	var challenge *cluster.EchoRequired
	if !errors.As(err, &challenge) {
		t.Fatalf("peer's first request after the restart: %v", err)
	}
	var v wire.VerifyResponse
	if err := peer.call(e.core.Verify, protect.PathVerify, &wire.VerifyRequest{Peer: "sensor-7", Echo: challenge.Echo}, &v); err != nil || v.Status.Membership() != membership.Revoked {
		t.Errorf("peer's verify of the squatter: %+v, %v; want a revoked warning", v, err)
	}
	if _, err := squatter.leave(); !errors.Is(err, cluster.ErrNotMember) {
		t.Errorf("squatter's protected request = %v, want not a member", err)
	}
	e.core.Flush() // the verify's warning record
	before = e.ledger.written()
	_, err = squatter.joinWith(here, nil)
	e.wantRefusal(err, cluster.ErrEnrolledOtherKey, "", before)
	if _, err := real.joinWith(here, nil); err != nil {
		t.Fatalf("the real device's join after replace: %v", err)
	}
	if v, err := peer.verify("sensor-7"); err != nil || v.Status.Membership() != membership.Member {
		t.Errorf("peer's verify of the real device: %+v, %v", v, err)
	}
	evs := e.ledger.eventsOf("sensor-7")
	if len(evs) != 3 || evs[0] != ledger.EventJoin || evs[1] != ledger.EventEnroll || evs[2] != ledger.EventJoin {
		t.Errorf("ledger of sensor-7: %v; want the squatter's join, the replacing enroll, the real join", evs)
	}
}

// TestUnenrollEndsMembership: removing an enrollment ends the member's
// membership at once (protected requests refused, peers warned) and blocks
// its rejoin.
func TestUnenrollEndsMembership(t *testing.T) {
	e := enrolledEnv(t)
	a := e.device("a").enroll().mustJoin()
	b := e.device("b").enroll().mustJoin()
	if _, err := e.core.Unenroll(t.Context(), "a", "decommissioned"); err != nil {
		t.Fatal(err)
	}
	if v, err := b.verify("a"); err != nil || v.Status.Membership() != membership.Revoked {
		t.Errorf("verify after removal: %+v, %v", v, err)
	}
	if _, err := a.leave(); !errors.Is(err, cluster.ErrNotMember) {
		t.Errorf("removed member's request = %v", err)
	}
	e.core.Flush() // the verify's warning record
	before := e.ledger.written()
	_, err := a.joinWith(here, nil)
	e.wantRefusal(err, cluster.ErrEnrollmentRemoved, "", before)
	_, err = e.core.Unenroll(t.Context(), "a", "again")
	if !errors.Is(err, cluster.ErrEnrollmentRemoved) {
		t.Errorf("second removal = %v", err)
	}
	if _, err := e.core.Unenroll(t.Context(), "nobody", "x"); !errors.Is(err, cluster.ErrUnenrolled) {
		t.Errorf("removal of a never enrolled ID = %v", err)
	}
}

// TestEnrollRequests: what EnrollEvent refuses before the ledger sees it,
// and what it records.
func TestEnrollRequests(t *testing.T) {
	e := enrolledEnv(t)
	key := e.device("a").coseKey()
	p := metresNorth(here, 10)
	for name, r := range map[string]cluster.Enrollment{
		"bad ID":                 {ID: "a/b", Key: key},
		"bad key":                {ID: "a", Key: []byte{0xa0}},
		"position, no tolerance": {ID: "a", Key: key, Position: &p},
		"tolerance, no position": {ID: "a", Key: key, Tolerance: 5},
		"expiry in the past":     {ID: "a", Key: key, Expires: e.now.Add(-time.Second)},
		"expiry now":             {ID: "a", Key: key, Expires: e.now},
	} {
		if _, err := e.core.Enroll(t.Context(), r); !errors.Is(err, cluster.ErrMalformed) {
			t.Errorf("%s: Enroll = %v, want ErrMalformed", name, err)
		}
	}
	if n := e.ledger.written(); n != 0 {
		t.Fatalf("%d events written by refused enrollments", n)
	}
	exp := e.now.Add(90 * time.Minute)
	if _, err := e.core.Enroll(t.Context(), cluster.Enrollment{ID: "a", Key: key, Position: &p, Tolerance: 7, Expires: exp, Reason: "line 3"}); err != nil {
		t.Fatal(err)
	}
	ev := e.ledger.last()
	if ev.Type != ledger.EventEnroll || ev.Lat != p.Lat || ev.Lon != p.Lon || ev.Tolerance != 7 ||
		ev.Expires != exp.Unix() || ev.Reason != "line 3" || ev.Replace || ev.Time != e.now.UnixMilli() {
		t.Errorf("enroll event %+v", ev)
	}
	if _, err := e.core.Enroll(t.Context(), cluster.Enrollment{ID: "a", Key: key}); !errors.Is(err, cluster.ErrEnrolled) {
		t.Errorf("enrolling twice = %v, want ErrEnrolled", err)
	}
}

// TestFleetKeysConfig: the same fleet key trusted twice is harmless; the
// admission policy parses and refuses unknown values.
func TestFleetKeysConfig(t *testing.T) {
	f := fleetKey(t)
	e := newEnv(t, func(c *cluster.Config) { c.FleetKeys = []*ecdsa.PublicKey{&f.PublicKey, &f.PublicKey} })
	if e.core == nil {
		t.Fatal("no core")
	}
	if _, err := cluster.ParseAdmission("closed"); err == nil {
		t.Error("ParseAdmission accepted an unknown policy")
	}
	for _, a := range []cluster.Admission{cluster.AdmissionEnrolled, cluster.AdmissionOpen} {
		if got, err := cluster.ParseAdmission(a.String()); err != nil || got != a {
			t.Errorf("ParseAdmission(%q) = %v, %v", a, got, err)
		}
	}
	if _, err := cluster.New(cluster.Config{ID: "c", Radius: 1, Admission: 7, Grants: e.grants}, e.keys, e.ledger); err == nil {
		t.Error("New accepted an unknown admission policy")
	}
}

// eventsOf returns the types of the events about id, in ledger order.
func (m *memLedger) eventsOf(id string) []ledger.EventType {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ledger.EventType
	for _, ev := range m.events {
		if ev.Device == id {
			out = append(out, ev.Type)
		}
	}
	return out
}

// TestScreenedJoinsTakeNoPlaceInTheRate: joins no fleet key or enrollment
// could admit are refused before the join rate (Config.JoinRate), so a flood
// of them leaves its places to devices that may join. A join that only its
// signatures can refuse — a forged credential under a trusted fleet key's
// kid — takes a place.
func TestScreenedJoinsTakeNoPlaceInTheRate(t *testing.T) {
	fleet, untrusted := fleetKey(t), fleetKey(t)
	e := newEnv(t, func(c *cluster.Config) {
		c.Admission, c.FleetKeys, c.JoinRate = cluster.AdmissionEnrolled, []*ecdsa.PublicKey{&fleet.PublicKey}, 1
	})
	now := e.now.Unix()
	for range 5 {
		stranger := e.device("stranger")
		if _, err := stranger.joinWith(here, nil); !errors.Is(err, cluster.ErrNotEnrolled) {
			t.Fatalf("join of a stranger: %v, want not enrolled", err)
		}
		if _, err := stranger.joinWith(here, stranger.credential(untrusted, now-60, now+60)); !errors.Is(err, cluster.ErrCredentialUntrusted) {
			t.Fatalf("join with an untrusted credential: %v, want untrusted fleet key", err)
		}
	}
	if _, err := e.device("sensor-a").enroll().joinWith(here, nil); err != nil {
		t.Fatalf("an enrolled device after the refusals: %v", err)
	}
	e.advance(time.Second)
	forger := e.device("forger")
	s, _ := wire.ParseSign1(forger.credential(fleet, now-60, now+60))
	forged, _ := wire.Sign1(untrusted, wire.FleetKID(&fleet.PublicKey), wire.AADCredential, s.Payload)
	if _, err := forger.joinWith(here, forged); !errors.Is(err, cluster.ErrCredentialSignature) {
		t.Fatalf("join with a forged credential: %v, want bad credential signature", err)
	}
	if _, err := e.device("sensor-b").enroll().joinWith(here, nil); !errors.Is(err, cluster.ErrJoinRate) {
		t.Fatalf("an enrolled device after the forged credential: %v, want refused over the join rate", err)
	}
}
