package wire_test

import (
	"errors"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// TestParseSign1UnprotectedHeader: the unsigned header may hold a kid (a
// bstr) and nothing else (PROTOCOL.md §3.2, §6). Every other label, or a kid
// of another type, is malformed — even when the signature still verifies,
// which it does, since the header is not signed.
func TestParseSign1UnprotectedHeader(t *testing.T) {
	key := privKey(t, scalarA)
	good, err := wire.Sign1(key, []byte("sensor-01"), wire.AADJoinRequest, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	var parts []any
	if err := wire.Unmarshal(good, &parts); err != nil {
		t.Fatal(err)
	}
	with := func(hdr map[int]any) []byte {
		return testutil.MustMarshal(t, []any{parts[0], hdr, parts[2], parts[3]})
	}
	cases := []struct {
		name string
		hdr  map[int]any
		ok   bool
	}{
		{"kid", map[int]any{4: []byte("sensor-01")}, true},
		{"empty", map[int]any{}, true},
		{"kid and an unknown label", map[int]any{4: []byte("sensor-01"), 99: []byte("junk")}, false},
		{"kid and an IV", map[int]any{4: []byte("sensor-01"), 5: make([]byte, 12)}, false},
		{"kid and a content type", map[int]any{4: []byte("sensor-01"), 3: 0}, false},
		{"alg repeated unprotected", map[int]any{4: []byte("sensor-01"), 1: -7}, false},
		{"kid as text", map[int]any{4: "sensor-01"}, false},
		{"kid null", map[int]any{4: nil}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := wire.ParseSign1(with(tc.hdr))
			if !tc.ok {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("ParseSign1 = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(&key.PublicKey, wire.AADJoinRequest); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
