package protect_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

var m2mSID = bytes.Repeat([]byte{0x51}, 16)

// TestDeriveM2M: each sender has its own keys, which depend on the session
// ID and on nothing but the sender: what one side sends with, the other
// opens with.
func TestDeriveM2M(t *testing.T) {
	a, b := protect.DeriveM2M(ticketSk, m2mSID, "sensor-01", "sensor-02")
	if bytes.Equal(a.Key.Bytes(), b.Key.Bytes()) || a.IV == b.IV {
		t.Error("the two senders of a session share a key or IV")
	}
	if c, _ := protect.DeriveM2M(ticketSk, bytes.Repeat([]byte{0x52}, 16), "sensor-01", "sensor-02"); bytes.Equal(c.Key.Bytes(), a.Key.Bytes()) || c.IV == a.IV {
		t.Error("another session ID gives the same key or IV")
	}
	peerSend, peerRecv := protect.DeriveM2M(ticketSk, m2mSID, "sensor-02", "sensor-01")
	if !bytes.Equal(peerRecv.Key.Bytes(), a.Key.Bytes()) || peerRecv.IV != a.IV || !bytes.Equal(peerSend.Key.Bytes(), b.Key.Bytes()) || peerSend.IV != b.IV {
		t.Error("the peer's side of the session does not mirror this side")
	}
	if again, _ := protect.DeriveM2M(ticketSk, m2mSID, "sensor-01", "sensor-03"); !bytes.Equal(again.Key.Bytes(), a.Key.Bytes()) || again.IV != a.IV {
		t.Error("a sender's keys depend on more than Sk, the session ID and the sender")
	}
}

func TestM2MRoundTrip(t *testing.T) {
	s1, s2 := protect.DeriveM2M(ticketSk, m2mSID, "sensor-01", "sensor-02")
	for _, seq := range []uint64{0, 1, 300, protect.MaxSeq} {
		b, err := protect.SealM2M(s1, m2mSID, "sensor-01", "sensor-02", seq, []byte("temperature 21.5"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := protect.ParseM2M(b)
		if err != nil {
			t.Fatalf("ParseM2M: %v", err)
		}
		if m.Sender != "sensor-01" || m.Seq != seq || !bytes.Equal(m.SID, m2mSID) {
			t.Errorf("ParseM2M = %q, %d, %x", m.Sender, m.Seq, m.SID)
		}
		pt, err := m.Open(s1, "sensor-02")
		if err != nil || string(pt) != "temperature 21.5" {
			t.Errorf("Open = %q, %v", pt, err)
		}
		// The reply, from the other side, with an empty plaintext.
		r, err := protect.SealM2M(s2, m2mSID, "sensor-02", "sensor-01", seq, nil)
		if err != nil {
			t.Fatal(err)
		}
		rm, err := protect.ParseM2M(r)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := rm.Open(s2, "sensor-01"); err != nil || len(pt) != 0 {
			t.Errorf("Open(reply) = %q, %v", pt, err)
		}
	}
}

func TestM2MOpenFails(t *testing.T) {
	s1, s2 := protect.DeriveM2M(ticketSk, m2mSID, "sensor-01", "sensor-02")
	otherSession, _ := protect.DeriveM2M([wire.KeySize]byte{1}, m2mSID, "sensor-01", "sensor-02")
	b, err := protect.SealM2M(s1, m2mSID, "sensor-01", "sensor-02", 5, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		keys     protect.M2MKeys
		receiver string
	}{
		{"wrong receiver", s1, "sensor-03"},
		{"sender as receiver", s1, "sensor-01"},
		{"receiver's own keys", s2, "sensor-02"},
		{"keys of another session", otherSession, "sensor-02"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := protect.ParseM2M(b)
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := m.Open(tc.keys, tc.receiver); !errors.Is(err, wire.ErrDecrypt) {
				t.Errorf("Open = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
	// Header fields are authenticated through nonce and AAD.
	e, err := wire.ParseEncrypt0(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, hdr := range map[string]wire.Encrypt0Header{
		"seq changed":    {KID: e.Unprotected.KID, PartialIV: protect.EncodePartialIV(6), KIDContext: m2mSID},
		"sender changed": {KID: []byte("sensor-03"), PartialIV: e.Unprotected.PartialIV, KIDContext: m2mSID},
		"sid changed":    {KID: e.Unprotected.KID, PartialIV: e.Unprotected.PartialIV, KIDContext: bytes.Repeat([]byte{9}, 16)},
	} {
		m, err := protect.ParseM2M(testutil.MustMarshal(t, wire.Encrypt0{Protected: e.Protected, Unprotected: hdr, Ciphertext: e.Ciphertext}))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := m.Open(s1, "sensor-02"); !errors.Is(err, wire.ErrDecrypt) {
			t.Errorf("%s: Open = %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := protect.SealM2M(s1, m2mSID, "sensor-01", "sensor-02", protect.MaxSeq+1, nil); err == nil {
		t.Error("SealM2M past MaxSeq succeeded")
	}
}

func TestParseM2MMalformed(t *testing.T) {
	a128 := []byte{0xa1, 0x01, 0x01}
	tag := make([]byte, wire.TagSize)
	enc := func(hdr map[int]any) []byte { return testutil.MustMarshal(t, []any{a128, hdr, tag}) }
	kid, piv := []byte("sensor-01"), []byte{0x05}
	if _, err := protect.ParseM2M(enc(map[int]any{4: kid, 6: piv, 10: m2mSID})); err != nil {
		t.Fatalf("ParseM2M(well-formed) = %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"no session ID (a protected request)", enc(map[int]any{4: kid, 6: piv})},
		{"session ID of 15 bytes", enc(map[int]any{4: kid, 6: piv, 10: m2mSID[1:]})},
		{"session ID of 17 bytes", enc(map[int]any{4: kid, 6: piv, 10: append([]byte{0}, m2mSID...)})},
		{"full IV", enc(map[int]any{4: kid, 5: make([]byte, 12), 6: piv, 10: m2mSID})},
		{"no sender", enc(map[int]any{6: piv, 10: m2mSID})},
		{"sender not an ID", enc(map[int]any{4: []byte("a b"), 6: piv, 10: m2mSID})},
		{"no partial IV", enc(map[int]any{4: kid, 10: m2mSID})},
		{"partial IV with a leading zero", enc(map[int]any{4: kid, 6: []byte{0, 1}, 10: m2mSID})},
		{"partial IV of 6 bytes", enc(map[int]any{4: kid, 6: make([]byte, 6), 10: m2mSID})},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := protect.ParseM2M(tc.msg); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseM2M(%x) = %+v, %v; want ErrMalformed", tc.msg, m, err)
			}
		})
	}
}
