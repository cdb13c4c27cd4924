package ledger_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

func TestStateMachine(t *testing.T) {
	a1 := join("a", "ka")                   // block 1, signed at genesis
	a1again := signedAt(join("a", "ka"), 1) // same key, fresh nonce, signed after block 1
	a1afterLeave := signedAt(a1again, 2)    // signed after the leave in block 2
	a1beforeLeave := signedAt(a1again, 1)   // signed before it
	a1unfresh := signedAt(a1again, 0)       // no freshness: a ledger from before FreshAt
	a1replay := a1                          // same key, same nonce
	a1conflict := join("a", "other")
	// a1's device, holding its nonce past a1's expiry (a join whose answer
	// it never got), joins again with it: signed after a1, new CH nonce.
	a1keptNonce := signedAt(a1, 1)
	a1keptNonce.CHNonce, a1keptNonce.Expires = []byte("ch-kept-nonce"), 1_900_000_000
	b1 := join("b", "kb")

	tests := []struct {
		name   string
		setup  []ledger.Event
		ev     ledger.Event
		want   error             // nil: accepted
		status membership.Status // of ev.Device afterwards; 0: no record
	}{
		{"join new", nil, a1, nil, membership.Member},
		{"rejoin member fresh nonce", []ledger.Event{a1}, a1again, nil, membership.Member},
		{"replayed join of member", []ledger.Event{a1}, a1replay, ledger.ErrDuplicate, membership.Member},
		{"replayed join of member signed after its join", []ledger.Event{a1}, a1keptNonce, ledger.ErrDuplicate, membership.Member},
		{"replayed join a millisecond before expiry", []ledger.Event{a1}, at(a1keptNonce, 1_799_999_999_999), ledger.ErrDuplicate, membership.Member},
		{"join with the nonce of an expired membership", []ledger.Event{a1}, at(a1keptNonce, 1_800_000_000_000), nil, membership.Member},
		{"replayed join of an expired member is stale", []ledger.Event{a1}, at(a1replay, 1_800_000_000_000), ledger.ErrStale, membership.Member},
		{"replayed join after leave is stale", []ledger.Event{a1, leave("a")}, a1replay, ledger.ErrStale, membership.Left},
		{"replayed join after rejoin is stale", []ledger.Event{a1, a1again}, a1replay, ledger.ErrStale, membership.Member},
		{"join signed before the latest rejoin", []ledger.Event{a1, signedAt(join("a", "ka"), 1)}, a1again, ledger.ErrStale, membership.Member},
		{"rejoin after leave", []ledger.Event{a1, leave("a")}, a1afterLeave, nil, membership.Member},
		{"rejoin signed before the leave", []ledger.Event{a1, leave("a")}, a1beforeLeave, ledger.ErrStale, membership.Left},
		{"rejoin without freshness", []ledger.Event{a1, leave("a")}, a1unfresh, ledger.ErrStale, membership.Left},
		{"rejoin of member without freshness", []ledger.Event{a1}, a1unfresh, ledger.ErrStale, membership.Member},
		{"join with other key", []ledger.Event{a1}, a1conflict, ledger.ErrConflict, membership.Member},
		{"join with other key after leave", []ledger.Event{a1, leave("a")}, a1conflict, ledger.ErrConflict, membership.Left},
		{"join with other key after revoke", []ledger.Event{a1, revoke("a")}, a1conflict, ledger.ErrConflict, membership.Revoked},
		{"rejoin after revoke", []ledger.Event{a1, revoke("a")}, a1afterLeave, ledger.ErrRevoked, membership.Revoked},
		{"stale rejoin after revoke", []ledger.Event{a1, revoke("a")}, a1replay, ledger.ErrRevoked, membership.Revoked},

		{"leave member", []ledger.Event{a1}, leave("a"), nil, membership.Left},
		{"leave unknown", nil, leave("a"), ledger.ErrUnknownDevice, 0},
		{"leave twice", []ledger.Event{a1, leave("a")}, leave("a"), ledger.ErrNotMember, membership.Left},
		{"leave revoked", []ledger.Event{a1, revoke("a")}, leave("a"), ledger.ErrNotMember, membership.Revoked},

		{"revoke member", []ledger.Event{a1}, revoke("a"), nil, membership.Revoked},
		{"revoke left", []ledger.Event{a1, leave("a")}, revoke("a"), nil, membership.Revoked},
		{"revoke unknown", nil, revoke("a"), ledger.ErrUnknownDevice, 0},
		{"revoke twice", []ledger.Event{a1, revoke("a")}, revoke("a"), ledger.ErrRevoked, membership.Revoked},

		{"session of members", []ledger.Event{a1, b1}, session("a", "b"), nil, membership.Member},
		{"session unknown device", []ledger.Event{b1}, session("a", "b"), ledger.ErrUnknownDevice, 0},
		{"session unknown peer", []ledger.Event{a1}, session("a", "b"), ledger.ErrUnknownDevice, membership.Member},
		{"session device left", []ledger.Event{a1, b1, leave("a")}, session("a", "b"), ledger.ErrNotMember, membership.Left},
		{"session peer revoked", []ledger.Event{a1, b1, revoke("b")}, session("a", "b"), ledger.ErrNotMember, membership.Member},

		{"session device expired", []ledger.Event{a1, b1}, at(session("a", "b"), 1_800_000_000_000), ledger.ErrNotMember, membership.Member},
		{"session peer expired", []ledger.Event{a1, b1}, at(session("b", "a"), 1_800_000_000_000), ledger.ErrNotMember, membership.Member},
		{"session a millisecond before expiry", []ledger.Event{a1, b1}, at(session("a", "b"), 1_799_999_999_999), nil, membership.Member},
		{"leave expired", []ledger.Event{a1}, at(leave("a"), 1_800_000_000_000), ledger.ErrNotMember, membership.Member},
		{"revoke expired", []ledger.Event{a1}, at(revoke("a"), 1_800_000_000_000), nil, membership.Revoked},
		{"rejoin expired", []ledger.Event{a1}, at(a1again, 1_800_000_000_000), nil, membership.Member},

		{"warning about unknown", nil, warning("a", "b"), nil, 0},
		{"warning about revoked", []ledger.Event{a1, b1, revoke("b")}, warning("a", "b"), nil, membership.Member},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			for _, ev := range tt.setup {
				mustAppend(t, l, ev)
			}
			head, _, err := l.Head()
			if err != nil {
				t.Fatal(err)
			}
			before := allDevices(t, l)

			ref, err := l.Append(t.Context(), tt.ev)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Append = %v, want %v", err, tt.want)
			}
			after, _, _ := l.Head()
			if tt.want != nil {
				if ref != (ledger.BlockRef{}) {
					t.Errorf("rejected Append returned ref %+v", ref)
				}
				if after != head {
					t.Errorf("rejected Append moved head from %d to %d", head.Height, after.Height)
				}
				if got := allDevices(t, l); !reflect.DeepEqual(got, before) {
					t.Errorf("rejected Append changed the index:\n got %+v\nwant %+v", got, before)
				}
				if !strings.Contains(err.Error(), tt.ev.Type.String()) {
					t.Errorf("error %q does not name the event type", err)
				}
			} else if ref.Height != head.Height+1 || after != ref {
				t.Errorf("accepted Append: ref %d, head before %d, after %d", ref.Height, head.Height, after.Height)
			}

			d, err := l.Lookup(tt.ev.Device)
			switch {
			case tt.status == 0 && !errors.Is(err, ledger.ErrUnknownDevice):
				t.Errorf("Lookup(%q) = %+v, %v; want ErrUnknownDevice", tt.ev.Device, d, err)
			case tt.status != 0 && err != nil:
				t.Errorf("Lookup(%q): %v", tt.ev.Device, err)
			case d.Status != tt.status:
				t.Errorf("status %s, want %s", d.Status, tt.status)
			}
			if tt.want == nil && tt.ev.Type == ledger.EventJoin &&
				(!bytes.Equal(d.DeviceNonce, tt.ev.DeviceNonce) || !bytes.Equal(d.CHNonce, tt.ev.CHNonce) ||
					d.Expires != tt.ev.Expires || d.Joined != ref) {
				t.Errorf("join did not update nonces, expiry or Joined: %+v", d)
			}
			mustVerify(t, l)
		})
	}
}

func TestInvalidEvent(t *testing.T) {
	mod := func(ev ledger.Event, f func(*ledger.Event)) ledger.Event {
		f(&ev)
		return ev
	}
	tests := []struct {
		name string
		ev   ledger.Event
	}{
		{"zero event", ledger.Event{}},
		{"unknown type", mod(leave("a"), func(e *ledger.Event) { e.Type = 9 })},
		{"empty device", mod(join("a", "k"), func(e *ledger.Event) { e.Device = "" })},
		{"device too long", mod(join("a", "k"), func(e *ledger.Event) { e.Device = strings.Repeat("x", ledger.MaxIDLen+1) })},
		{"device not UTF-8", mod(join("a", "k"), func(e *ledger.Event) { e.Device = "a\xff" })},
		{"peer not UTF-8", mod(warning("a", "b"), func(e *ledger.Event) { e.Peer = "\xc0" })},
		{"reason not UTF-8", mod(revoke("a"), func(e *ledger.Event) { e.Reason = "\xff" })},
		{"join without key", mod(join("a", "k"), func(e *ledger.Event) { e.Key = nil })},
		{"join without device nonce", mod(join("a", "k"), func(e *ledger.Event) { e.DeviceNonce = nil })},
		{"join without CH nonce", mod(join("a", "k"), func(e *ledger.Event) { e.CHNonce = []byte{} })},
		{"session without peer", mod(session("a", "b"), func(e *ledger.Event) { e.Peer = "" })},
		{"session with key", mod(session("a", "b"), func(e *ledger.Event) { e.Key = []byte("session key") })},
		{"leave with nonce", mod(leave("a"), func(e *ledger.Event) { e.DeviceNonce = []byte{1} })},
		{"revoke with request", mod(revoke("a"), func(e *ledger.Event) { e.Request = []byte{1} })},
		{"leave with freshness", mod(leave("a"), func(e *ledger.Event) { e.FreshAt = 1 })},
		{"session with freshness", mod(session("a", "b"), func(e *ledger.Event) { e.FreshAt = 1 })},
		{"enroll with freshness", mod(enroll("c", "kc"), func(e *ledger.Event) { e.FreshAt = 1 })},
		{"unenroll with freshness", mod(unenroll("a"), func(e *ledger.Event) { e.FreshAt = 1 })},
	}
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "k")) // so that state errors cannot mask shape errors
	mustAppend(t, l, join("b", "k"))
	head, _, _ := l.Head()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Append(t.Context(), tt.ev); !errors.Is(err, ledger.ErrInvalidEvent) {
				t.Fatalf("Append = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if after, _, _ := l.Head(); after != head {
		t.Errorf("invalid events moved head from %d to %d", head.Height, after.Height)
	}
	mustVerify(t, l)
}

func TestStringers(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{ledger.EventJoin.String(), "join"},
		{ledger.EventLeave.String(), "leave"},
		{ledger.EventRevoke.String(), "revoke"},
		{ledger.EventSession.String(), "session"},
		{ledger.EventVerifyWarning.String(), "verify-warning"},
		{ledger.EventEnroll.String(), "enroll"},
		{ledger.EventUnenroll.String(), "unenroll"},
		{ledger.EventType(0).String(), "EventType(0)"},
		{membership.Member.String(), "member"},
		{membership.Left.String(), "left"},
		{membership.Revoked.String(), "revoked"},
		{membership.Status(7).String(), "Status(7)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// at returns ev at time ms (unix milliseconds); a join signed again, over an
// echo of that time.
func at(ev ledger.Event, ms int64) ledger.Event {
	ev.Time = ms
	if ev.Type == ledger.EventJoin {
		return signedAt(ev, ev.FreshAt)
	}
	return ev
}

// TestStatusError: an event that needs a current member names the device
// and its status, and wraps ErrUnknownDevice or ErrNotMember.
func TestStatusError(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "ka"))
	mustAppend(t, l, join("b", "kb"))
	mustAppend(t, l, revoke("b"))
	for _, tc := range []struct {
		ev     ledger.Event
		id     string
		status membership.Status
		is     error
	}{
		{session("a", "b"), "b", membership.Revoked, ledger.ErrNotMember},
		{session("a", "c"), "c", membership.Unknown, ledger.ErrUnknownDevice},
		{at(session("a", "a"), 1_800_000_000_000), "a", membership.Expired, ledger.ErrNotMember},
		{leave("c"), "c", membership.Unknown, ledger.ErrUnknownDevice},
	} {
		_, err := l.Append(t.Context(), tc.ev)
		var se *ledger.StatusError
		if !errors.As(err, &se) || se.ID != tc.id || se.Status != tc.status || !errors.Is(err, tc.is) {
			t.Errorf("%s %s/%s: %v, want a StatusError for %s %v", tc.ev.Type, tc.ev.Device, tc.ev.Peer, err, tc.id, tc.status)
		}
		if err := ledger.Check(l, tc.ev); !errors.As(err, &se) || se.ID != tc.id || se.Status != tc.status {
			t.Errorf("Check(%s %s/%s) = %v, want the same refusal as Append", tc.ev.Type, tc.ev.Device, tc.ev.Peer, err)
		}
	}
}

// TestCheckWritesNothing: Check answers as Append would, without writing.
func TestCheckWritesNothing(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "ka"))
	head, _, _ := l.Head()
	before := allDevices(t, l)
	for _, tc := range []struct {
		ev   ledger.Event
		want error
	}{
		{join("b", "kb"), nil},
		{join("a", "other"), ledger.ErrConflict},
		{leave("a"), nil},
		{session("a", "b"), ledger.ErrUnknownDevice},
		{revoke("a"), nil},
		{ledger.Event{Type: 99, Device: "a"}, ledger.ErrInvalidEvent},
	} {
		if err := ledger.Check(l, tc.ev); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Check(%s %s) = %v, want %v", tc.ev.Type, tc.ev.Device, err, tc.want)
		}
	}
	if after, _, _ := l.Head(); after != head || !reflect.DeepEqual(allDevices(t, l), before) {
		t.Error("Check changed the ledger")
	}
}

// TestStatusAt: a member record is current until its expiry second; the
// other statuses do not expire; Expires 0 never expires.
func TestStatusAt(t *testing.T) {
	exp := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		d    ledger.Device
		now  time.Time
		want membership.Status
	}{
		{ledger.Device{Status: membership.Member, Expires: exp.Unix()}, exp.Add(-time.Nanosecond), membership.Member},
		{ledger.Device{Status: membership.Member, Expires: exp.Unix()}, exp, membership.Expired},
		{ledger.Device{Status: membership.Member}, exp.Add(1000 * time.Hour), membership.Member},
		{ledger.Device{Status: membership.Left, Expires: exp.Unix()}, exp.Add(time.Hour), membership.Left},
		{ledger.Device{Status: membership.Revoked, Expires: exp.Unix()}, exp.Add(-time.Hour), membership.Revoked},
	} {
		if got := tc.d.StatusAt(tc.now); got != tc.want {
			t.Errorf("%v expiring %d, at %d: %v, want %v", tc.d.Status, tc.d.Expires, tc.now.Unix(), got, tc.want)
		}
	}
}
