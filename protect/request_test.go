package protect_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// testKeys are member keys from a fixed K_m, and a second, unrelated set.
func testKeys(t testing.TB) (mine, other protect.MemberKeys) {
	var km1, km2 [32]byte
	copy(km1[:], "member key of sensor-01 .........")
	copy(km2[:], "member key of sensor-02 .........")
	return protect.DeriveMemberKeys(km1), protect.DeriveMemberKeys(km2)
}

func TestDeriveMemberKeysDistinct(t *testing.T) {
	k, other := testKeys(t)
	parts := [][]byte{k.Req.Bytes(), k.Resp.Bytes(), k.Ticket.Bytes(), k.Talk.Bytes(), k.IV[:], other.Req.Bytes()}
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			if bytes.Equal(parts[i][:wire.NonceSize], parts[j][:wire.NonceSize]) {
				t.Errorf("derived keys %d and %d are equal", i, j)
			}
		}
	}
}

func TestMemberKeyInputs(t *testing.T) {
	z := bytes.Repeat([]byte{1}, 32)
	nd, nch := bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 16)
	var th [32]byte
	base, err := protect.MemberKey(z, nd, nch, "c", "d", th)
	if err != nil {
		t.Fatal(err)
	}
	otherTh := th
	otherTh[0] = 1
	// Every input changes K_m; swapping the nonces too (salt = N_d ‖ N_ch).
	variants := map[string]func() ([32]byte, error){
		"z":           func() ([32]byte, error) { return protect.MemberKey(bytes.Repeat([]byte{9}, 32), nd, nch, "c", "d", th) },
		"nonces":      func() ([32]byte, error) { return protect.MemberKey(z, nch, nd, "c", "d", th) },
		"cluster":     func() ([32]byte, error) { return protect.MemberKey(z, nd, nch, "c2", "d", th) },
		"id":          func() ([32]byte, error) { return protect.MemberKey(z, nd, nch, "c", "d2", th) },
		"thumbprint":  func() ([32]byte, error) { return protect.MemberKey(z, nd, nch, "c", "d", otherTh) },
		"id⇄cluster":  func() ([32]byte, error) { return protect.MemberKey(z, nd, nch, "d", "c", th) },
		"device only": func() ([32]byte, error) { return protect.MemberKey(z, append(nd, nch...), nil, "c", "d", th) },
	}
	for name, f := range variants {
		km, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if km == base && name != "device only" {
			t.Errorf("changing %s does not change K_m", name)
		}
		if name == "device only" && km != base {
			t.Errorf("salt is not N_d ‖ N_ch")
		}
	}
}

// TestRequestResponseRoundTrip: a device's request opens at the CH and the
// CH's answer opens at the device, through the device's Outgoing and the
// CH's Request (which make their AAD once for both directions) and through
// the functions that take the request's fields; an answer sealed for another
// path than the one the CH opened does not open as this request's answer.
func TestRequestResponseRoundTrip(t *testing.T) {
	k, _ := testKeys(t)
	for _, seq := range []uint64{0, 1, 255, 256, 1 << 32, protect.MaxSeq} {
		for i, path := range []string{protect.PathVerify, protect.PathSession, protect.PathLeave} {
			pt := []byte("request " + path)
			sent, err := protect.Seal(&k, "cluster-1", "sensor-01", seq, path, pt)
			if err != nil {
				t.Fatal(err)
			}
			b, err := protect.SealRequest(&k, "cluster-1", "sensor-01", seq, path, pt)
			if err != nil || !bytes.Equal(b, sent.Body) {
				t.Fatalf("SealRequest = %x, %v; Seal gave %x", b, err, sent.Body)
			}
			req, err := protect.ParseRequest(b)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if req.KID != "sensor-01" || req.Seq != seq {
				t.Errorf("ParseRequest = %q, %d; want sensor-01, %d", req.KID, req.Seq, seq)
			}
			got, err := req.Open(&k, "cluster-1", path)
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("Open(seq %d, %s) = %q, %v", seq, path, got, err)
			}
			resp, err := req.SealResponse(&k, "cluster-1", path, []byte("answer"))
			if err != nil {
				t.Fatal(err)
			}
			if b, err := protect.SealResponse(&k, "cluster-1", req.KID, req.Seq, path, []byte("answer")); err != nil || !bytes.Equal(b, resp) {
				t.Errorf("SealResponse = %x, %v; Request.SealResponse gave %x", b, err, resp)
			}
			got, err = sent.OpenResponse(&k, resp)
			if err != nil || string(got) != "answer" {
				t.Errorf("OpenResponse(seq %d, %s) = %q, %v", seq, path, got, err)
			}
			if got, err = protect.OpenResponse(&k, "cluster-1", "sensor-01", seq, path, resp); err != nil || string(got) != "answer" {
				t.Errorf("protect.OpenResponse(seq %d, %s) = %q, %v", seq, path, got, err)
			}
			another := []string{protect.PathVerify, protect.PathSession, protect.PathLeave}[(i+1)%3]
			if resp, err = req.SealResponse(&k, "cluster-1", another, []byte("answer")); err != nil {
				t.Fatal(err)
			}
			if got, err := sent.OpenResponse(&k, resp); !errors.Is(err, wire.ErrDecrypt) {
				t.Errorf("an answer sealed for %s opened as one for %s: %q, %v", another, path, got, err)
			}
		}
	}
}

func TestRequestOpenFails(t *testing.T) {
	k, other := testKeys(t)
	b, err := protect.SealRequest(&k, "cluster-1", "sensor-01", 7, protect.PathVerify, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	swapped := k
	swapped.Req = k.Resp
	tests := []struct {
		name    string
		keys    *protect.MemberKeys
		cluster string
		path    string
	}{
		{"another member's keys", &other, "cluster-1", protect.PathVerify},
		{"the response key", &swapped, "cluster-1", protect.PathVerify},
		{"another path", &k, "cluster-1", protect.PathSession},
		{"another cluster", &k, "cluster-2", protect.PathVerify},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := protect.ParseRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := req.Open(tc.keys, tc.cluster, tc.path); !errors.Is(err, wire.ErrDecrypt) {
				t.Errorf("Open = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
	// kid and partial IV are authenticated: a request re-labelled with another seq or kid fails.
	m, err := wire.ParseEncrypt0(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, hdr := range map[string]wire.Encrypt0Header{
		"seq changed": {KID: m.Unprotected.KID, PartialIV: protect.EncodePartialIV(8)},
		"kid changed": {KID: []byte("sensor-02"), PartialIV: m.Unprotected.PartialIV},
	} {
		relabelled := testutil.MustMarshal(t, wire.Encrypt0{Protected: m.Protected, Unprotected: hdr, Ciphertext: m.Ciphertext})
		req, err := protect.ParseRequest(relabelled)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := req.Open(&k, "cluster-1", protect.PathVerify); !errors.Is(err, wire.ErrDecrypt) {
			t.Errorf("%s: Open = %v, want ErrDecrypt", name, err)
		}
	}
}

// TestResponseBoundToRequest: a response opens only as the answer to the
// request (kid, seq, path) it was sealed for (§4.1).
func TestResponseBoundToRequest(t *testing.T) {
	k, other := testKeys(t)
	resp, err := protect.SealResponse(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, []byte("status 0"))
	if err != nil {
		t.Fatal(err)
	}
	swapped := k
	swapped.Resp = k.Req
	tests := []struct {
		name    string
		keys    *protect.MemberKeys
		cluster string
		id      string
		seq     uint64
		path    string
	}{
		{"another seq", &k, "cluster-1", "sensor-01", 42, protect.PathVerify},
		{"seq 0", &k, "cluster-1", "sensor-01", 0, protect.PathVerify},
		{"another path", &k, "cluster-1", "sensor-01", 41, protect.PathSession},
		{"another kid", &k, "cluster-1", "sensor-02", 41, protect.PathVerify},
		{"another cluster", &k, "cluster-2", "sensor-01", 41, protect.PathVerify},
		{"another member's keys", &other, "cluster-1", "sensor-01", 41, protect.PathVerify},
		{"the request key", &swapped, "cluster-1", "sensor-01", 41, protect.PathVerify},
	}
	if _, err := protect.OpenResponse(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, resp); err != nil {
		t.Fatalf("OpenResponse for the right request: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if pt, err := protect.OpenResponse(tc.keys, tc.cluster, tc.id, tc.seq, tc.path, resp); !errors.Is(err, wire.ErrDecrypt) {
				t.Errorf("OpenResponse = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
	// A request is not its own response (different keys, same nonce and AAD).
	req, err := protect.SealRequest(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, []byte("status 0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protect.OpenResponse(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, req); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenResponse(request) = %v, want ErrDecrypt", err)
	}
	if _, err := protect.OpenResponse(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, []byte{0x80}); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("OpenResponse(garbage) = %v, want ErrMalformed", err)
	}
}

// TestRefusalBoundToRequest: a sealed refusal opens only as the refusal of
// the request it was sealed for; it never opens as an answer, nor an answer
// as a refusal; each seal draws a new IV, so a request refused twice (a
// replay) reuses no nonce (§4.1).
func TestRefusalBoundToRequest(t *testing.T) {
	k, other := testKeys(t)
	req := protect.Request{KID: "sensor-01", Seq: 41}
	refusal, err := req.SealRefusal(&k, "cluster-1", protect.PathVerify, "not a member: left")
	if err != nil {
		t.Fatal(err)
	}
	again, err := req.SealRefusal(&k, "cluster-1", protect.PathVerify, "not a member: left")
	if err != nil || bytes.Equal(again, refusal) {
		t.Fatalf("the same refusal sealed twice gave the same bytes (%v): the IV must be new", err)
	}
	for _, b := range [][]byte{refusal, again} {
		if diag, err := protect.OpenRefusal(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, b); err != nil || diag != "not a member: left" {
			t.Fatalf("OpenRefusal = %q, %v", diag, err)
		}
	}
	if _, err := protect.OpenRefusal(&k, "cluster-1", "sensor-01", 42, protect.PathVerify, refusal); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRefusal(another seq) = %v, want ErrDecrypt", err)
	}
	if _, err := protect.OpenRefusal(&other, "cluster-1", "sensor-01", 41, protect.PathVerify, refusal); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRefusal(another member's keys) = %v, want ErrDecrypt", err)
	}
	if _, err := protect.OpenResponse(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, refusal); err == nil {
		t.Error("a refusal opened as an answer")
	}
	answer := testutil.MustMarshal(t, &wire.VerifyResponse{Peer: "sensor-02"})
	resp, err := req.SealResponse(&k, "cluster-1", protect.PathVerify, answer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protect.OpenRefusal(&k, "cluster-1", "sensor-01", 41, protect.PathVerify, resp); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("OpenRefusal(an answer) = %v, want ErrMalformed", err)
	}
	if _, err := req.SealRefusal(&k, "cluster-1", protect.PathVerify, string(make([]byte, wire.MaxRefusal+1))); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("SealRefusal(%d bytes) = %v, want ErrMalformed", wire.MaxRefusal+1, err)
	}
}

func TestSealRequestSeqLimit(t *testing.T) {
	k, _ := testKeys(t)
	if _, err := protect.SealRequest(&k, "c", "d", protect.MaxSeq, protect.PathLeave, nil); err != nil {
		t.Errorf("SealRequest(MaxSeq) = %v", err)
	}
	for _, seq := range []uint64{protect.MaxSeq + 1, 1 << 63} {
		if b, err := protect.SealRequest(&k, "c", "d", seq, protect.PathLeave, nil); err == nil {
			t.Errorf("SealRequest(%d) = %x, want an error", seq, b)
		}
	}
}

func TestParseRequestMalformed(t *testing.T) {
	a128 := []byte{0xa1, 0x01, 0x01}
	tag := make([]byte, wire.TagSize)
	enc := func(hdr map[int]any) []byte { return testutil.MustMarshal(t, []any{a128, hdr, tag}) }
	kid, piv := []byte("sensor-01"), []byte{0x05}
	if _, err := protect.ParseRequest(enc(map[int]any{4: kid, 6: piv})); err != nil {
		t.Fatalf("ParseRequest(well-formed) = %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"no kid", enc(map[int]any{6: piv})},
		{"empty kid", enc(map[int]any{4: []byte{}, 6: piv})},
		{"kid not an ID", enc(map[int]any{4: []byte("sensor 01"), 6: piv})},
		{"no partial IV", enc(map[int]any{4: kid})},
		{"empty partial IV", enc(map[int]any{4: kid, 6: []byte{}})},
		{"partial IV with a leading zero", enc(map[int]any{4: kid, 6: []byte{0, 5}})},
		{"partial IV of 6 bytes", enc(map[int]any{4: kid, 6: []byte{1, 0, 0, 0, 0, 0}})},
		{"full IV", enc(map[int]any{4: kid, 5: make([]byte, 12), 6: piv})},
		{"kid context (an M2M message)", enc(map[int]any{4: kid, 6: piv, 10: make([]byte, 16)})},
		{"tagged", cat([]byte{0xd0}, enc(map[int]any{4: kid, 6: piv}))},
		{"not COSE", []byte("GET /verify")},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := protect.ParseRequest(tc.msg); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseRequest(%x) = %+v, %v; want ErrMalformed", tc.msg, r, err)
			}
		})
	}
}

func TestNonce(t *testing.T) {
	var zero [wire.NonceSize]byte
	iv := [wire.NonceSize]byte(testutil.MustHex(t, "0102030405060708090a0b0c"))
	tests := []struct {
		iv   [wire.NonceSize]byte
		seq  uint64
		want string
	}{
		{zero, 0, "000000000000000000000000"},
		{zero, 1, "000000000000000000000001"},
		{zero, 0x0102, "000000000000000000000102"},
		{zero, protect.MaxSeq, "00000000000000ffffffffff"},
		{zero, 1<<64 - 1, "00000000ffffffffffffffff"},
		{iv, 0, "0102030405060708090a0b0c"},
		{iv, 0x0c, "0102030405060708090a0b00"},
		{iv, 0xffffffffff, "01020304050607f7f6f5f4f3"},
	}
	for _, tc := range tests {
		if got := protect.Nonce(tc.iv, tc.seq); !bytes.Equal(got[:], testutil.MustHex(t, tc.want)) {
			t.Errorf("Nonce(%x, %d) = %x, want %s", tc.iv, tc.seq, got, tc.want)
		}
	}
}

func TestPartialIV(t *testing.T) {
	tests := []struct {
		seq uint64
		enc string
	}{
		{0, "00"}, {1, "01"}, {0x7f, "7f"}, {0xff, "ff"}, {0x100, "0100"}, {0xffff, "ffff"}, {0x10000, "010000"},
		{1 << 32, "0100000000"}, {protect.MaxSeq, "ffffffffff"},
	}
	for _, tc := range tests {
		if got := protect.EncodePartialIV(tc.seq); !bytes.Equal(got, testutil.MustHex(t, tc.enc)) {
			t.Errorf("EncodePartialIV(%d) = %x, want %s", tc.seq, got, tc.enc)
		}
		if got, err := protect.DecodePartialIV(testutil.MustHex(t, tc.enc)); err != nil || got != tc.seq {
			t.Errorf("DecodePartialIV(%s) = %d, %v; want %d", tc.enc, got, err, tc.seq)
		}
	}
	for _, bad := range []string{"", "0001", "0000", "00ffffffff", "010000000000", "ffffffffffff", "000000000000"} {
		if got, err := protect.DecodePartialIV(testutil.MustHex(t, bad)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("DecodePartialIV(%s) = %d, %v; want ErrMalformed", bad, got, err)
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
