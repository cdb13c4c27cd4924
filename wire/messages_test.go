package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

func tstr(s string) []byte {
	if len(s) >= 24 {
		panic("tstr: short strings only")
	}
	return cat([]byte{0x60 + byte(len(s))}, []byte(s))
}

// nested returns n nested one-item arrays around an empty array: n+1 levels.
func nested(n int) []byte { return cat(bytes.Repeat([]byte{0x81}, n), []byte{0x80}) }

// TestDecodeLimits checks the receiver rules of PROTOCOL.md §1 on the codec.
func TestDecodeLimits(t *testing.T) {
	hello := cat([]byte{0xa1, 0x01}, tstr("sensor-01"))
	arr := func(n int) []byte { // n small uints
		b := []byte{0x98, byte(n)}
		return append(b, make([]byte, n)...)
	}
	mp := func(n int) []byte { // {0: 0, 1: 0, ...}
		b := []byte{0xb8, byte(n)}
		for i := range n {
			b = append(b, testutil.MustMarshal(t, i)...)
			b = append(b, 0x00)
		}
		return b
	}
	joinWithKey := func(key []byte) []byte {
		return cat([]byte{0xa5, 0x01}, tstr("cluster-1"), []byte{0x02}, tstr("sensor-01"), []byte{0x03}, key,
			[]byte{0x04, 0x00, 0x06, 0x50}, make([]byte, 16))
	}

	tests := []struct {
		name string
		msg  []byte
		into func() any
		ok   bool
	}{
		{"hello", hello, func() any { return new(wire.Hello) }, true},
		{"duplicate map key", cat([]byte{0xa2, 0x01}, tstr("sensor-01"), []byte{0x01}, tstr("sensor-02")),
			func() any { return new(wire.Hello) }, false},
		{"duplicate key in any", []byte{0xa2, 0x01, 0x00, 0x01, 0x00}, func() any { return new(any) }, false},
		{"nesting of 8", nested(7), func() any { return new(any) }, true},
		{"nesting of 9", nested(8), func() any { return new(any) }, false},
		{"join key nested to 8 levels", joinWithKey(nested(6)), func() any { return new(wire.JoinRequest) }, true},
		{"join key nested to 9 levels", joinWithKey(nested(7)), func() any { return new(wire.JoinRequest) }, false},
		{"array of 64 items", arr(64), func() any { return new(any) }, true},
		{"array of 65 items", arr(65), func() any { return new(any) }, false},
		{"map of 32 pairs", mp(32), func() any { return new(any) }, true},
		{"map of 33 pairs", mp(33), func() any { return new(any) }, false},
		{"indefinite-length map", cat([]byte{0xbf}, hello[1:], []byte{0xff}), func() any { return new(wire.Hello) }, false},
		{"indefinite-length array", []byte{0x9f, 0x01, 0xff}, func() any { return new(any) }, false},
		{"indefinite-length byte string", []byte{0x5f, 0x41, 0x00, 0xff}, func() any { return new([]byte) }, false},
		{"indefinite-length text string", cat([]byte{0xa1, 0x01, 0x7f}, tstr("sensor"), tstr("-01"), []byte{0xff}),
			func() any { return new(wire.Hello) }, false},
		{"tag", cat([]byte{0xc1}, []byte{0x00}), func() any { return new(any) }, false},
		{"tag inside a message", cat([]byte{0xa1, 0x01, 0xd8, 0x20}, tstr("sensor-01")),
			func() any { return new(wire.Hello) }, false},
		{"trailing bytes", cat(hello, []byte{0x00}), func() any { return new(wire.Hello) }, false},
		{"two messages", cat(hello, hello), func() any { return new(wire.Hello) }, false},
		{"truncated", hello[:len(hello)-1], func() any { return new(wire.Hello) }, false},
		{"empty", nil, func() any { return new(wire.Hello) }, false},
		{"invalid UTF-8", []byte{0xa1, 0x01, 0x62, 0xc3, 0x28}, func() any { return new(wire.Hello) }, false},
		{"text key", cat([]byte{0xa1}, tstr("1"), tstr("sensor-01")), func() any { return new(wire.Hello) }, false},
		{"wrong type", cat([]byte{0xa1, 0x01, 0x01}), func() any { return new(wire.Hello) }, false},
		{"negative for uint", cat([]byte{0xa3, 0x01, 0x20, 0x02, 0x58, 0x20}, make([]byte, 32), []byte{0x03, 0x00}),
			func() any { return new(wire.LedgerHead) }, false},
		{"status over 255", cat([]byte{0xa2, 0x01}, tstr("sensor-02"), []byte{0x02, 0x19, 0x01, 0x00}),
			func() any { return new(wire.VerifyResponse) }, false},
		{"float for int", cat([]byte{0xa3, 0x01, 0xf9, 0x00, 0x00, 0x02, 0x58, 0x20}, make([]byte, 32), []byte{0x03, 0x00}),
			func() any { return new(wire.LedgerHead) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.Unmarshal(tc.msg, tc.into())
			if tc.ok && err != nil {
				t.Fatalf("Unmarshal(%x) = %v, want nil", tc.msg, err)
			}
			if !tc.ok && !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("Unmarshal(%x) = %v, want ErrMalformed", tc.msg, err)
			}
		})
	}
	t.Run("unknown field", func(t *testing.T) {
		b := cat([]byte{0xa2, 0x01}, tstr("sensor-01"), []byte{0x02}, tstr("x"))
		if err := wire.Decode(b, new(wire.Hello)); !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("Decode(hello with key 2) = %v, want ErrMalformed", err)
		}
	})
}

// proof is a well-formed talk proof (its tag verifies under no key).
func proof() *wire.TalkProof {
	return &wire.TalkProof{Nonce: bytes.Repeat([]byte{0x12}, wire.NonceSize), Time: 1767225600, Tag: bytes.Repeat([]byte{0x16}, wire.TagSize)}
}

func ptr[T any](v T) *T { return &v }

// validMessages returns one valid instance of every message type.
func validMessages(t testing.TB) map[string]wire.Validator {
	key := testutil.MustMarshal(t, map[int]any{1: 2, -1: 1, -2: testutil.MustHex(t, rfcX), -3: testutil.MustHex(t, rfcY)})
	h32, n16 := bytes.Repeat([]byte{0x32}, 32), bytes.Repeat([]byte{0x16}, 16)
	box := wire.Encrypt0{Protected: []byte{0xa1, 0x01, 0x01}, Unprotected: wire.Encrypt0Header{IV: make([]byte, 12)},
		Ciphertext: make([]byte, 32)}
	ticket := func(recipient string) wire.Ticket {
		return wire.Ticket{SID: n16, Expires: 1767225600, Initiator: "m1", Responder: "m2", Recipient: recipient, Box: box}
	}
	return map[string]wire.Validator{
		"JoinRequest": &wire.JoinRequest{Cluster: "c", ID: "d", Key: key, Lat: -wire.MaxMicroLat, Lon: wire.MaxMicroLon,
			Nonce: n16, Echo: []byte{1}},
		"JoinResponse": &wire.JoinResponse{Cluster: "c", CHKey: key, Thumbprint: h32, ID: "d", DeviceNonce: n16,
			CHNonce: n16, Height: 1, BlockHash: h32, Expires: 2},
		"VerifyRequest":        &wire.VerifyRequest{Peer: "m1", Echo: bytes.Repeat([]byte{1}, wire.MaxEchoLen)},
		"VerifyResponse":       &wire.VerifyResponse{Peer: "m1", Status: wire.VerdictOf(membership.Expired), Height: 3, BlockHash: h32, Expires: 4},
		"SessionRequest":       &wire.SessionRequest{Peer: "m1"},
		"SessionResponse":      &wire.SessionResponse{Grant: ptr(ticket("m2")), Ticket: ptr(ticket("m1"))},
		"LeaveRequest":         &wire.LeaveRequest{},
		"LeaveResponse":        &wire.LeaveResponse{Height: 9, BlockHash: h32},
		"Ticket":               func() *wire.Ticket { tk := ticket("m1"); return &tk }(),
		"ClusterInfo":          &wire.ClusterInfo{Cluster: "c", Key: key, Thumbprint: h32, Lat: 1, Lon: -1, Radius: 500},
		"LedgerHead":           &wire.LedgerHead{Height: 1, Hash: h32, TimeMS: 1767225600000},
		"Hello":                &wire.Hello{ID: "m1", Responder: "m2", Proof: proof()},
		"Hello/no proof":       &wire.Hello{ID: "m1"},
		"TalkProof":            proof(),
		"SessionRequest/proof": &wire.SessionRequest{Peer: "m1", Proof: proof(), Echo: []byte{9}},
		"SessionResponse/warning": &wire.SessionResponse{Warning: &wire.VerifyResponse{Peer: "m1", Status: wire.VerdictOf(membership.Revoked),
			Height: 3, BlockHash: h32, Expires: 4}},
		"TalkResponse": &wire.TalkResponse{ID: "m2", Ticket: ticket("m1")},
		"Rotation":     &wire.Rotation{Cluster: "c", Old: key, New: coseKey(t, scalarB), Time: 1767225600},
	}
}

func newLike(v wire.Validator) wire.Validator {
	return reflect.New(reflect.TypeOf(v).Elem()).Interface().(wire.Validator)
}

func TestMessagesRoundTrip(t *testing.T) {
	for name, v := range validMessages(t) {
		t.Run(name, func(t *testing.T) {
			if err := v.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			b := testutil.MustMarshal(t, v)
			got := newLike(v)
			if err := wire.Decode(b, got); err != nil {
				t.Fatalf("Decode(%x): %v", b, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, v)
			}
			if b2 := testutil.MustMarshal(t, got); !bytes.Equal(b2, b) {
				t.Errorf("re-encoding differs: %x vs %x", b2, b)
			}
		})
	}
}

// TestDecodeValidate checks the field rules of each message (PROTOCOL.md §3–§6).
func TestDecodeValidate(t *testing.T) {
	long := strings.Repeat("a", wire.MaxIDLen+1)
	tests := []struct {
		msg  string
		name string
		mod  func(v wire.Validator)
	}{
		{"JoinRequest", "bad cluster", func(v wire.Validator) { v.(*wire.JoinRequest).Cluster = "c 1" }},
		{"JoinRequest", "empty id", func(v wire.Validator) { v.(*wire.JoinRequest).ID = "" }},
		{"JoinRequest", "latitude too far north", func(v wire.Validator) { v.(*wire.JoinRequest).Lat = wire.MaxMicroLat + 1 }},
		{"JoinRequest", "latitude too far south", func(v wire.Validator) { v.(*wire.JoinRequest).Lat = -wire.MaxMicroLat - 1 }},
		{"JoinRequest", "longitude out of range", func(v wire.Validator) { v.(*wire.JoinRequest).Lon = -wire.MaxMicroLon - 1 }},
		{"JoinRequest", "nonce of 15 bytes", func(v wire.Validator) { v.(*wire.JoinRequest).Nonce = make([]byte, 15) }},
		{"JoinRequest", "nonce missing", func(v wire.Validator) { v.(*wire.JoinRequest).Nonce = nil }},
		{"JoinRequest", "echo of 41 bytes", func(v wire.Validator) { v.(*wire.JoinRequest).Echo = make([]byte, 41) }},
		{"JoinResponse", "thumbprint of 31 bytes", func(v wire.Validator) { v.(*wire.JoinResponse).Thumbprint = make([]byte, 31) }},
		{"JoinResponse", "CH nonce missing", func(v wire.Validator) { v.(*wire.JoinResponse).CHNonce = nil }},
		{"JoinResponse", "block hash missing", func(v wire.Validator) { v.(*wire.JoinResponse).BlockHash = nil }},
		{"JoinResponse", "id too long", func(v wire.Validator) { v.(*wire.JoinResponse).ID = long }},
		{"VerifyRequest", "peer missing", func(v wire.Validator) { v.(*wire.VerifyRequest).Peer = "" }},
		{"VerifyRequest", "echo of 41 bytes", func(v wire.Validator) { v.(*wire.VerifyRequest).Echo = make([]byte, 41) }},
		{"VerifyResponse", "block hash of 33 bytes", func(v wire.Validator) { v.(*wire.VerifyResponse).BlockHash = make([]byte, 33) }},
		{"VerifyResponse", "bad peer", func(v wire.Validator) { v.(*wire.VerifyResponse).Peer = "a/b" }},
		{"SessionRequest", "bad peer", func(v wire.Validator) { v.(*wire.SessionRequest).Peer = "é" }},
		{"SessionResponse", "grant recipient not a party", func(v wire.Validator) { v.(*wire.SessionResponse).Grant.Recipient = "m3" }},
		{"SessionResponse", "ticket SID missing", func(v wire.Validator) { v.(*wire.SessionResponse).Ticket.SID = nil }},
		{"LeaveRequest", "echo of 41 bytes", func(v wire.Validator) { v.(*wire.LeaveRequest).Echo = make([]byte, 41) }},
		{"LeaveResponse", "hash missing", func(v wire.Validator) { v.(*wire.LeaveResponse).BlockHash = nil }},
		{"Ticket", "recipient not a party", func(v wire.Validator) { v.(*wire.Ticket).Recipient = "m3" }},
		{"Ticket", "SID of 17 bytes", func(v wire.Validator) { v.(*wire.Ticket).SID = make([]byte, 17) }},
		{"Ticket", "bad initiator", func(v wire.Validator) { v.(*wire.Ticket).Initiator = "" }},
		{"Ticket", "box not AES-128-GCM", func(v wire.Validator) { v.(*wire.Ticket).Box.Protected = []byte{0xa1, 0x01, 0x03} }},
		{"Ticket", "box IV of 11 bytes", func(v wire.Validator) { v.(*wire.Ticket).Box.Unprotected.IV = make([]byte, 11) }},
		{"Ticket", "box without IV", func(v wire.Validator) { v.(*wire.Ticket).Box.Unprotected.IV = nil }},
		{"Ticket", "box sealing 17 bytes", func(v wire.Validator) { v.(*wire.Ticket).Box.Ciphertext = make([]byte, 33) }},
		{"ClusterInfo", "thumbprint missing", func(v wire.Validator) { v.(*wire.ClusterInfo).Thumbprint = nil }},
		{"ClusterInfo", "position out of range", func(v wire.Validator) { v.(*wire.ClusterInfo).Lon = wire.MaxMicroLon + 1 }},
		{"LedgerHead", "hash of 31 bytes", func(v wire.Validator) { v.(*wire.LedgerHead).Hash = make([]byte, 31) }},
		{"Hello", "id too long", func(v wire.Validator) { v.(*wire.Hello).ID = long }},
		{"Hello", "proof without responder", func(v wire.Validator) { v.(*wire.Hello).Responder = "" }},
		{"Hello", "responder without proof", func(v wire.Validator) { v.(*wire.Hello).Proof = nil }},
		{"Hello", "bad responder", func(v wire.Validator) { v.(*wire.Hello).Responder = "m 2" }},
		{"Hello", "proof nonce of 11 bytes", func(v wire.Validator) { v.(*wire.Hello).Proof.Nonce = make([]byte, 11) }},
		{"Hello", "proof tag of 15 bytes", func(v wire.Validator) { v.(*wire.Hello).Proof.Tag = make([]byte, 15) }},
		{"TalkProof", "nonce of 16 bytes", func(v wire.Validator) { v.(*wire.TalkProof).Nonce = make([]byte, 16) }},
		{"TalkProof", "tag missing", func(v wire.Validator) { v.(*wire.TalkProof).Tag = nil }},
		{"SessionRequest/proof", "proof tag of 17 bytes", func(v wire.Validator) { v.(*wire.SessionRequest).Proof.Tag = make([]byte, 17) }},
		{"SessionResponse", "grant without ticket", func(v wire.Validator) { v.(*wire.SessionResponse).Ticket = nil }},
		{"SessionResponse/warning", "warning saying member", func(v wire.Validator) {
			v.(*wire.SessionResponse).Warning.Status = wire.VerdictOf(membership.Member)
		}},
		{"SessionResponse/warning", "warning with a grant", func(v wire.Validator) {
			v.(*wire.SessionResponse).Grant = validMessages(t)["SessionResponse"].(*wire.SessionResponse).Grant
		}},
		{"SessionResponse/warning", "warning about a bad id", func(v wire.Validator) { v.(*wire.SessionResponse).Warning.Peer = "" }},
		{"TalkResponse", "bad id", func(v wire.Validator) { v.(*wire.TalkResponse).ID = "" }},
		{"TalkResponse", "ticket recipient not a party", func(v wire.Validator) { v.(*wire.TalkResponse).Ticket.Recipient = "x" }},
	}
	for _, tc := range tests {
		t.Run(tc.msg+"/"+tc.name, func(t *testing.T) {
			v := validMessages(t)[tc.msg]
			tc.mod(v)
			b := testutil.MustMarshal(t, v)
			if err := wire.Decode(b, newLike(v)); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("Decode(%x) = %v, want ErrMalformed", b, err)
			}
		})
	}

	// Required fields left out of the map altogether.
	missing := []struct {
		msg   string
		label int
	}{
		{"JoinRequest", 1}, {"JoinRequest", 2}, {"JoinRequest", 3}, {"JoinRequest", 6},
		{"JoinResponse", 2}, {"JoinResponse", 3}, {"JoinResponse", 5}, {"JoinResponse", 8},
		{"VerifyRequest", 1}, {"VerifyResponse", 1}, {"SessionRequest", 1},
		{"SessionResponse", 1}, {"SessionResponse", 2}, {"LeaveResponse", 2},
		{"Ticket", 1}, {"Ticket", 3}, {"Ticket", 4}, {"Ticket", 5}, {"Ticket", 6},
		{"ClusterInfo", 1}, {"ClusterInfo", 2}, {"ClusterInfo", 3}, {"LedgerHead", 2},
		{"Hello", 1}, {"TalkResponse", 1}, {"TalkResponse", 2},
	}
	for _, tc := range missing {
		v := validMessages(t)[tc.msg]
		var m map[int]any
		if err := wire.Unmarshal(testutil.MustMarshal(t, v), &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m[tc.label]; !ok {
			t.Fatalf("%s has no key %d", tc.msg, tc.label)
		}
		delete(m, tc.label)
		b := testutil.MustMarshal(t, m)
		if err := wire.Decode(b, newLike(v)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s without key %d: Decode(%x) = %v, want ErrMalformed", tc.msg, tc.label, b, err)
		}
	}
}

// TestDecodeRejectsEmptyEcho: PROTOCOL.md §1 has echo = bstr .size (1..40).
// Marshal drops an empty echo (omitempty), so the bytes are written by hand.
func TestDecodeRejectsEmptyEcho(t *testing.T) {
	emptyEcho := []byte{0x09, 0x40} // 9: h''
	tests := []struct {
		name string
		msg  []byte
		into wire.Validator
	}{
		{"verify-req", cat([]byte{0xa2, 0x01}, tstr("sensor-02"), emptyEcho), new(wire.VerifyRequest)},
		{"session-req", cat([]byte{0xa2, 0x01}, tstr("sensor-02"), emptyEcho), new(wire.SessionRequest)},
		{"leave-req", cat([]byte{0xa1}, emptyEcho), new(wire.LeaveRequest)},
		{"join-req", func() []byte {
			var m map[int]any
			if err := wire.Unmarshal(testutil.MustMarshal(t, validMessages(t)["JoinRequest"]), &m); err != nil {
				t.Fatal(err)
			}
			m[7] = []byte{}
			return testutil.MustMarshal(t, m)
		}(), new(wire.JoinRequest)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := wire.Decode(tc.msg, tc.into); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("Decode(%x) = %v, want ErrMalformed", tc.msg, err)
			}
		})
	}
}

// TestVerdictCodes pins the verdict codes of docs/PROTOCOL.md §4.3: the
// status member is encoded as 0, unknown 1, left 2, revoked 3, expired 4,
// whatever membership.Status numbers them; other codes are malformed.
func TestVerdictCodes(t *testing.T) {
	for code, status := range []membership.Status{membership.Member, membership.Unknown, membership.Left, membership.Revoked, membership.Expired} {
		b := testutil.MustMarshal(t, wire.VerifyResponse{Peer: "m1", Status: wire.VerdictOf(status)})
		want := testutil.MustMarshal(t, map[int]any{1: "m1", 2: code})
		if !bytes.Equal(b, want) {
			t.Errorf("%v encodes as %x, want %x", status, b, want)
		}
		var got wire.VerifyResponse
		if err := wire.Decode(want, &got); err != nil || got.Status.Membership() != status {
			t.Errorf("verdict code %d decodes as %v, %v; want %v", code, got.Status, err, status)
		}
	}
	var got wire.VerifyResponse
	if err := wire.Decode(testutil.MustMarshal(t, map[int]any{1: "m1", 2: 5}), &got); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("verdict code 5 = %v, want ErrMalformed", err)
	}
	if err := (&wire.VerifyResponse{Peer: "m1", Status: wire.VerdictOf(9)}).Validate(); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("a verdict of status 9 = %v, want ErrMalformed", err)
	}
}
