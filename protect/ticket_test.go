package protect_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

var (
	ticketExpiry = time.Unix(1767225600, 0)
	ticketSk     = [wire.KeySize]byte(bytes.Repeat([]byte{0x5c}, wire.KeySize))
)

// sealedTicket seals ticketSk to sensor-01 (the initiator) under its ticket key.
func sealedTicket(t *testing.T, k protect.MemberKeys) wire.Ticket {
	t.Helper()
	tk, err := protect.SealTicket(k.Ticket, "cluster-1", wire.Ticket{
		SID: bytes.Repeat([]byte{0xa5}, 16), Expires: uint64(ticketExpiry.Unix()),
		Initiator: "sensor-01", Responder: "sensor-02", Recipient: "sensor-01",
	}, ticketSk)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTicketRoundTrip(t *testing.T) {
	k, _ := testKeys(t)
	tk := sealedTicket(t, k)
	if err := tk.Validate(); err != nil {
		t.Fatalf("sealed ticket does not validate: %v", err)
	}
	// Through the wire, as in a session-resp or talk-resp.
	var got wire.Ticket
	if err := wire.Decode(testutil.MustMarshal(t, &tk), &got); err != nil {
		t.Fatal(err)
	}
	sk, err := protect.OpenTicket(k.Ticket, "cluster-1", "sensor-01", &got, ticketExpiry.Add(-time.Second))
	if err != nil {
		t.Fatalf("OpenTicket: %v", err)
	}
	if sk != ticketSk {
		t.Errorf("OpenTicket = %x, want %x", sk, ticketSk)
	}
	// IVs are random: sealing twice must not repeat a (key, nonce) pair.
	if again := sealedTicket(t, k); bytes.Equal(again.Box.Unprotected.IV, tk.Box.Unprotected.IV) {
		t.Error("two tickets sealed under one key share an IV")
	}
}

func TestOpenTicketFails(t *testing.T) {
	k, other := testKeys(t)
	valid := ticketExpiry.Add(-time.Second)
	tests := []struct {
		name    string
		mod     func(tk *wire.Ticket)
		key     wire.Key
		cluster string
		me      string
		now     time.Time
		want    error
	}{
		{"wrong recipient", nil, k.Ticket, "cluster-1", "sensor-02", valid, protect.ErrWrongRecipient},
		{"expired at the expiry", nil, k.Ticket, "cluster-1", "sensor-01", ticketExpiry, protect.ErrExpired},
		{"expired long ago", nil, k.Ticket, "cluster-1", "sensor-01", ticketExpiry.Add(time.Hour), protect.ErrExpired},
		{"another member's ticket key", nil, other.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"another cluster", nil, k.Ticket, "cluster-2", "sensor-01", valid, wire.ErrDecrypt},
		{"sid changed", func(tk *wire.Ticket) { tk.SID[0] ^= 1 }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"expiry extended", func(tk *wire.Ticket) { tk.Expires += 3600 }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"initiator changed", func(tk *wire.Ticket) { tk.Initiator, tk.Recipient = "sensor-03", "sensor-03" },
			k.Ticket, "cluster-1", "sensor-03", valid, wire.ErrDecrypt},
		{"responder changed", func(tk *wire.Ticket) { tk.Responder = "sensor-03" }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"recipient relabelled", func(tk *wire.Ticket) { tk.Recipient = "sensor-02" }, k.Ticket, "cluster-1", "sensor-02", valid, wire.ErrDecrypt},
		{"ciphertext changed", func(tk *wire.Ticket) { tk.Box.Ciphertext[0] ^= 1 }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"tag changed", func(tk *wire.Ticket) { tk.Box.Ciphertext[31] ^= 1 }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"IV changed", func(tk *wire.Ticket) { tk.Box.Unprotected.IV[0] ^= 1 }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrDecrypt},
		{"recipient not a party", func(tk *wire.Ticket) { tk.Recipient = "sensor-03" }, k.Ticket, "cluster-1", "sensor-03", valid, wire.ErrMalformed},
		{"IV missing", func(tk *wire.Ticket) { tk.Box.Unprotected.IV = nil }, k.Ticket, "cluster-1", "sensor-01", valid, wire.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := sealedTicket(t, k)
			if tc.mod != nil {
				tc.mod(&tk)
			}
			sk, err := protect.OpenTicket(tc.key, tc.cluster, tc.me, &tk, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenTicket = %x, %v; want %v", sk, err, tc.want)
			}
			if sk != [wire.KeySize]byte{} {
				t.Errorf("OpenTicket returned key material with an error: %x", sk)
			}
		})
	}
}
