package ledger_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// enroll returns an enroll of id with the key of keyName.
func enroll(id, keyName string) ledger.Event {
	key, err := wire.EncodePublicKey(&deviceKey(keyName).PublicKey)
	if err != nil {
		panic(err)
	}
	return ledger.Event{Type: ledger.EventEnroll, Device: id, Key: key, Time: 1_700_000_000_000, Reason: "enrolled by test"}
}

// replace returns an enroll of id with the key of keyName that replaces
// whatever key the ID had.
func replace(id, keyName string) ledger.Event {
	ev := enroll(id, keyName)
	ev.Replace = true
	return ev
}

func unenroll(id string) ledger.Event {
	return ledger.Event{Type: ledger.EventUnenroll, Device: id, Time: 1_700_000_000_005, Reason: "decommissioned"}
}

// TestEnrollStateMachine: the rules an enrollment adds to the state machine
// (ledger/enroll.go): the enrolled key binds the ID, --replace gives it to
// a new key and ends the old key's membership, a removed enrollment blocks
// the ID. Each case checks the refusal, that a refused event changes
// nothing, the device's status and enrollment afterwards, and that the
// ledger still verifies.
func TestEnrollStateMachine(t *testing.T) {
	a := join("a", "ka")
	aNew := join("a", "kn") // the replacement board's key
	aAgain := join("a", "ka")
	type state int
	const (
		none state = iota
		active
		removed
	)
	tests := []struct {
		name   string
		setup  []ledger.Event
		ev     ledger.Event
		want   error
		device string            // whose status to check (default ev.Device)
		status membership.Status // of the device afterwards; 0: no record
		enr    state             // of the enrollment afterwards
		key    string            // the enrolled key name afterwards
	}{
		{name: "enroll new ID", ev: enroll("a", "ka"), enr: active, key: "ka"},
		{name: "enroll a member with its key", setup: []ledger.Event{a}, ev: enroll("a", "ka"), status: membership.Member, enr: active, key: "ka"},
		{name: "enroll a member with another key", setup: []ledger.Event{a}, ev: enroll("a", "kn"), want: ledger.ErrConflict, status: membership.Member},
		{name: "enroll twice", setup: []ledger.Event{enroll("a", "ka")}, ev: enroll("a", "ka"), want: ledger.ErrEnrolled, enr: active, key: "ka"},
		{name: "enroll a revoked key", setup: []ledger.Event{a, revoke("a")}, ev: enroll("a", "ka"), want: ledger.ErrRevoked, status: membership.Revoked},
		{name: "enroll after removal", setup: []ledger.Event{enroll("a", "ka"), unenroll("a")}, ev: enroll("a", "ka"), want: ledger.ErrEnrolled, enr: removed, key: "ka"},

		{name: "join enrolled key", setup: []ledger.Event{enroll("a", "ka")}, ev: a, status: membership.Member, enr: active, key: "ka"},
		{name: "join another key than enrolled", setup: []ledger.Event{enroll("a", "ka")}, ev: aNew, want: ledger.ErrConflict, enr: active, key: "ka"},
		{name: "join after removal", setup: []ledger.Event{enroll("a", "ka"), unenroll("a")}, ev: a, want: ledger.ErrEnrollmentRemoved, enr: removed, key: "ka"},
		{name: "rejoin after removal", setup: []ledger.Event{enroll("a", "ka"), a, unenroll("a")}, ev: aAgain, want: ledger.ErrEnrollmentRemoved, status: membership.Revoked, enr: removed, key: "ka"},

		{name: "remove ends membership", setup: []ledger.Event{enroll("a", "ka"), a}, ev: unenroll("a"), status: membership.Revoked, enr: removed, key: "ka"},
		{name: "remove before any join", setup: []ledger.Event{enroll("a", "ka")}, ev: unenroll("a"), enr: removed, key: "ka"},
		{name: "remove a left device", setup: []ledger.Event{enroll("a", "ka"), a, leave("a")}, ev: unenroll("a"), status: membership.Revoked, enr: removed, key: "ka"},
		{name: "remove twice", setup: []ledger.Event{enroll("a", "ka"), unenroll("a")}, ev: unenroll("a"), want: ledger.ErrEnrollmentRemoved, enr: removed, key: "ka"},
		{name: "remove never enrolled", setup: []ledger.Event{a}, ev: unenroll("a"), want: ledger.ErrNotEnrolled, status: membership.Member},

		// The squatter joined while joining was open; the operator gives the
		// ID to the real device's key.
		{name: "replace a squatter", setup: []ledger.Event{a}, ev: replace("a", "kn"), status: membership.Revoked, enr: active, key: "kn"},
		{name: "new key joins after replace", setup: []ledger.Event{a, replace("a", "kn")}, ev: aNew, status: membership.Member, enr: active, key: "kn"},
		{name: "old key refused after replace", setup: []ledger.Event{a, replace("a", "kn")}, ev: aAgain, want: ledger.ErrConflict, status: membership.Revoked, enr: active, key: "kn"},
		{name: "replace a revoked squatter", setup: []ledger.Event{a, revoke("a"), replace("a", "kn")}, ev: aNew, status: membership.Member, enr: active, key: "kn"},
		{name: "replace an enrolled board", setup: []ledger.Event{enroll("a", "ka"), a}, ev: replace("a", "kn"), status: membership.Revoked, enr: active, key: "kn"},
		{name: "replace a removed enrollment", setup: []ledger.Event{enroll("a", "ka"), a, unenroll("a"), replace("a", "kn")}, ev: aNew, status: membership.Member, enr: active, key: "kn"},
		{name: "replace renews the same key", setup: []ledger.Event{enroll("a", "ka"), a}, ev: replace("a", "ka"), status: membership.Member, enr: active, key: "ka"},
		{name: "replace cannot revive a revoked key", setup: []ledger.Event{a, revoke("a")}, ev: replace("a", "ka"), want: ledger.ErrRevoked, status: membership.Revoked},
		{name: "replace an unknown ID", ev: replace("a", "kn"), enr: active, key: "kn"},

		{name: "enrollment of another ID is not a binding", setup: []ledger.Event{enroll("b", "ka")}, ev: a, status: membership.Member},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			for _, ev := range tt.setup {
				mustAppend(t, l, ev)
			}
			head, _, _ := l.Head()
			devices, enrollments := allDevices(t, l), allEnrollments(t, l)
			if err := ledger.Check(l, tt.ev); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
			ref, err := l.Append(t.Context(), tt.ev)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Append = %v, want %v", err, tt.want)
			}
			after, _, _ := l.Head()
			if tt.want != nil && (after != head || !reflect.DeepEqual(allDevices(t, l), devices) ||
				!reflect.DeepEqual(allEnrollments(t, l), enrollments)) {
				t.Errorf("a refused %s changed the ledger", tt.ev.Type)
			}
			id := tt.ev.Device
			d, err := l.Lookup(id)
			switch {
			case tt.status == 0 && !errors.Is(err, ledger.ErrUnknownDevice):
				t.Errorf("Lookup(%q) = %+v, %v; want no record", id, d, err)
			case tt.status != 0 && (err != nil || d.Status != tt.status):
				t.Errorf("Lookup(%q) = status %v, %v; want %v", id, d.Status, err, tt.status)
			}
			en, err := l.Enrollment(id)
			switch {
			case tt.enr == none && !errors.Is(err, ledger.ErrNotEnrolled):
				t.Errorf("Enrollment(%q) = %+v, %v; want none", id, en, err)
			case tt.enr != none && err != nil:
				t.Errorf("Enrollment(%q): %v", id, err)
			case tt.enr != none && (en.Removed != (tt.enr == removed) || !bytes.Equal(en.Key, enroll(id, tt.key).Key)):
				t.Errorf("enrollment removed=%v key %x, want %v and the key of %s", en.Removed, en.Key[:8], tt.enr == removed, tt.key)
			}
			if tt.want == nil && tt.ev.Type == ledger.EventEnroll && (en.Enrolled != ref || en.Updated != ref) {
				t.Errorf("enrollment blocks %+v/%+v, want %+v", en.Enrolled, en.Updated, ref)
			}
			if tt.want == nil && tt.ev.Type == ledger.EventUnenroll && en.Updated != ref {
				t.Errorf("removed enrollment updated in %+v, want %+v", en.Updated, ref)
			}
			mustVerify(t, l)
		})
	}
}

// TestEnrollmentFieldsRoundTrip: an enrollment's position, tolerance and
// expiry are recorded, and a ledger with enrollments reopens and verifies
// read-only (what `ledger verify` does).
func TestEnrollmentFieldsRoundTrip(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	ev := enroll("a", "ka")
	ev.Lat, ev.Lon, ev.Tolerance, ev.Expires = 48_856_600, -2_352_200, 25, 1_900_000_000
	ref := mustAppend(t, l, ev)
	want := ledger.Enrollment{ID: "a", Key: ev.Key, Lat: ev.Lat, Lon: ev.Lon, Tolerance: 25, Expires: 1_900_000_000, Enrolled: ref, Updated: ref}
	if got, err := l.Enrollment("a"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Enrollment = %+v, %v\nwant %+v", got, err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ro := e.openReadOnly(t)
	mustVerify(t, ro)
	if got := allEnrollments(t, ro); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Enrollments = %+v", got)
	}
}

// TestInvalidEnrollEvent: the shape of enroll and unenroll events is
// checked before the state machine.
func TestInvalidEnrollEvent(t *testing.T) {
	mod := func(ev ledger.Event, f func(*ledger.Event)) ledger.Event {
		f(&ev)
		return ev
	}
	for name, ev := range map[string]ledger.Event{
		"enroll without key":           mod(enroll("a", "k"), func(e *ledger.Event) { e.Key = nil }),
		"enroll with a bad key":        mod(enroll("a", "k"), func(e *ledger.Event) { e.Key = []byte{0xa0} }),
		"enroll with a nonce":          mod(enroll("a", "k"), func(e *ledger.Event) { e.DeviceNonce = []byte{1} }),
		"enroll with a request":        mod(enroll("a", "k"), func(e *ledger.Event) { e.Request = []byte{1} }),
		"enroll position no tolerance": mod(enroll("a", "k"), func(e *ledger.Event) { e.Lat = 1 }),
		"enroll position out of range": mod(enroll("a", "k"), func(e *ledger.Event) { e.Lat, e.Tolerance = 91_000_000, 5 }),
		"enroll negative expiry":       mod(enroll("a", "k"), func(e *ledger.Event) { e.Expires = -1 }),
		"enroll with a peer":           mod(enroll("a", "k"), func(e *ledger.Event) { e.Peer = "b" }),
		"unenroll with a key":          mod(unenroll("a"), func(e *ledger.Event) { e.Key = enroll("a", "k").Key }),
		"unenroll with replace":        mod(unenroll("a"), func(e *ledger.Event) { e.Replace = true }),
		"join with a tolerance":        mod(join("a", "k"), func(e *ledger.Event) { e.Tolerance = 5 }),
		"revoke with replace":          mod(revoke("a"), func(e *ledger.Event) { e.Replace = true }),
	} {
		t.Run(name, func(t *testing.T) {
			l := newEnv(t).open(t)
			if _, err := l.Append(t.Context(), ev); !errors.Is(err, ledger.ErrInvalidEvent) {
				t.Fatalf("Append = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

// TestEnrollmentActiveAt: an enrollment admits joins until its expiry
// second, never after removal; Expires 0 never expires.
func TestEnrollmentActiveAt(t *testing.T) {
	exp := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		e    ledger.Enrollment
		now  time.Time
		want error
	}{
		{ledger.Enrollment{Expires: exp.Unix()}, exp.Add(-time.Nanosecond), nil},
		{ledger.Enrollment{Expires: exp.Unix()}, exp, ledger.ErrEnrollmentExpired},
		{ledger.Enrollment{}, exp.Add(1000 * time.Hour), nil},
		{ledger.Enrollment{Removed: true}, exp, ledger.ErrEnrollmentRemoved},
		{ledger.Enrollment{Removed: true, Expires: exp.Unix()}, exp, ledger.ErrEnrollmentRemoved},
	} {
		if got := tc.e.ActiveAt(tc.now); got != tc.want {
			t.Errorf("%+v at %v: %v, want %v", tc.e, tc.now.Unix(), got, tc.want)
		}
	}
}

// TestVerifyFindsTamperedEnrollment: an enrollment record that the chain
// does not produce fails Verify as an index mismatch.
func TestVerifyFindsTamperedEnrollment(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, enroll("a", "ka"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rewriteEnrollment(t, e.path, "a", func(en *ledger.Enrollment) { en.Key = enroll("a", "kn").Key })
	if err := e.openReadOnly(t).Verify(t.Context(), nil); !errors.Is(err, ledger.ErrIndexMismatch) {
		t.Fatalf("Verify = %v, want ErrIndexMismatch", err)
	}
}

// allEnrollments returns every enrollment record.
func allEnrollments(t testing.TB, l ledger.Ledger) []ledger.Enrollment {
	t.Helper()
	var out []ledger.Enrollment
	if err := l.Enrollments(func(e ledger.Enrollment) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("Enrollments: %v", err)
	}
	return out
}

// rewriteEnrollment changes the stored enrollment record of id behind the
// ledger's back.
func rewriteEnrollment(t *testing.T, path, id string, fn func(*ledger.Enrollment)) {
	t.Helper()
	tamper(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("enrollments"))
		var en ledger.Enrollment
		if err := wire.Unmarshal(b.Get([]byte(id)), &en); err != nil {
			return err
		}
		fn(&en)
		v, err := wire.Marshal(en)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
}

// TestLedgerWithoutEnrollmentsBucket: a ledger written before enrollments
// existed (no "enrollments" bucket) verifies read-only with none, and a
// writable open adds the bucket so that enrollments can be appended.
func TestLedgerWithoutEnrollmentsBucket(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "ka"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tamper(t, e.path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("enrollments")) })
	ro := e.openReadOnly(t)
	mustVerify(t, ro)
	if _, err := ro.Enrollment("a"); !errors.Is(err, ledger.ErrNotEnrolled) {
		t.Errorf("Enrollment = %v, want ErrNotEnrolled", err)
	}
	if n := len(allEnrollments(t, ro)); n != 0 {
		t.Errorf("%d enrollments", n)
	}
	ro.Close()
	rw := e.open(t)
	mustAppend(t, rw, enroll("b", "kb"))
	mustVerify(t, rw)
}
