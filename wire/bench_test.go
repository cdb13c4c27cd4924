package wire_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// Benchmarks of every message's CBOR encoding and decoding (Decode includes
// Validate), and of the COSE structures. Compare runs with benchstat:
//
//	go test -run=NONE -bench=. -benchmem -count=10 ./wire > new.txt

func benchKey(b *testing.B) (*ecdsa.PrivateKey, []byte) {
	b.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ck, err := wire.EncodePublicKey(&k.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	return k, ck
}

// benchMessages returns one filled-in value of each protocol message and a
// constructor of an empty one to decode into.
func benchMessages(b *testing.B) []struct {
	name  string
	value wire.Validator
	empty func() wire.Validator
} {
	_, ck := benchKey(b)
	n16 := make([]byte, 16)
	h32 := make([]byte, 32)
	box := wire.Encrypt0{Protected: []byte{0xa1, 0x01, 0x01}, Unprotected: wire.Encrypt0Header{IV: make([]byte, 12)}, Ciphertext: make([]byte, 32)}
	ticket := wire.Ticket{SID: n16, Expires: 1_800_000_000, Initiator: "sensor-a", Responder: "sensor-b", Recipient: "sensor-a", Box: box}
	return []struct {
		name  string
		value wire.Validator
		empty func() wire.Validator
	}{
		{"JoinRequest", &wire.JoinRequest{Cluster: "cluster-1", ID: "sensor-a", Key: ck, Lat: 48_856_600, Lon: 2_352_200, Nonce: n16, Echo: make([]byte, 12)}, func() wire.Validator { return &wire.JoinRequest{} }},
		{"JoinResponse", &wire.JoinResponse{Cluster: "cluster-1", CHKey: ck, Thumbprint: h32, ID: "sensor-a", DeviceNonce: n16, CHNonce: n16, Height: 1234, BlockHash: h32, Expires: 1_800_000_000}, func() wire.Validator { return &wire.JoinResponse{} }},
		{"VerifyRequest", &wire.VerifyRequest{Peer: "sensor-b"}, func() wire.Validator { return &wire.VerifyRequest{} }},
		{"VerifyResponse", &wire.VerifyResponse{Peer: "sensor-b", Status: wire.VerdictOf(membership.Member), Height: 1234, BlockHash: h32, Expires: 1_800_000_000}, func() wire.Validator { return &wire.VerifyResponse{} }},
		{"SessionRequest", &wire.SessionRequest{Peer: "sensor-b"}, func() wire.Validator { return &wire.SessionRequest{} }},
		{"SessionResponse", &wire.SessionResponse{Grant: &ticket, Ticket: &ticket}, func() wire.Validator { return &wire.SessionResponse{} }},
		{"LeaveRequest", &wire.LeaveRequest{Echo: make([]byte, 12)}, func() wire.Validator { return &wire.LeaveRequest{} }},
		{"LeaveResponse", &wire.LeaveResponse{Height: 1234, BlockHash: h32}, func() wire.Validator { return &wire.LeaveResponse{} }},
		{"Ticket", &ticket, func() wire.Validator { return &wire.Ticket{} }},
		{"ClusterInfo", &wire.ClusterInfo{Cluster: "cluster-1", Key: ck, Thumbprint: h32, Lat: 48_856_600, Lon: 2_352_200, Radius: 1000}, func() wire.Validator { return &wire.ClusterInfo{} }},
		{"LedgerHead", &wire.LedgerHead{Height: 1234, Hash: h32, TimeMS: 1_800_000_000_000}, func() wire.Validator { return &wire.LedgerHead{} }},
		{"Hello", &wire.Hello{ID: "sensor-a"}, func() wire.Validator { return &wire.Hello{} }},
		{"TalkResponse", &wire.TalkResponse{ID: "sensor-b", Ticket: ticket}, func() wire.Validator { return &wire.TalkResponse{} }},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, m := range benchMessages(b) {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.Marshal(m.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, m := range benchMessages(b) {
		enc, err := wire.Marshal(m.value)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if err := wire.Decode(enc, m.empty()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign1(b *testing.B) {
	k, _ := benchKey(b)
	payload := make([]byte, 200)
	for b.Loop() {
		if _, err := wire.Sign1(k, []byte("sensor-a"), wire.AADJoinRequest, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign1Verify(b *testing.B) {
	k, _ := benchKey(b)
	signed, err := wire.Sign1(k, []byte("sensor-a"), wire.AADJoinRequest, make([]byte, 200))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := wire.ParseSign1(signed)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Verify(&k.PublicKey, wire.AADJoinRequest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt0(b *testing.B) {
	var key [wire.KeySize]byte
	var nonce [wire.NonceSize]byte
	aad := []byte("external aad of about this size....")
	for _, size := range []int{16, 64, 256} {
		pt := make([]byte, size)
		sealed, err := wire.Seal(wire.NewKey(key), nonce, wire.Encrypt0Header{KID: []byte("sensor-a"), PartialIV: []byte{1}}, aad, pt)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("Seal/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := wire.Seal(wire.NewKey(key), nonce, wire.Encrypt0Header{KID: []byte("sensor-a"), PartialIV: []byte{1}}, aad, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("Open/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				m, err := wire.ParseEncrypt0(sealed)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Open(wire.NewKey(key), nonce, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCOSEKey(b *testing.B) {
	k, ck := benchKey(b)
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := wire.EncodePublicKey(&k.PublicKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := wire.ParsePublicKey(ck); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Thumbprint", func(b *testing.B) {
		for b.Loop() {
			wire.Thumbprint(&k.PublicKey)
		}
	})
}

func BenchmarkParseSign1(b *testing.B) {
	k, _ := benchKey(b)
	signed, err := wire.Sign1(k, []byte("sensor-a"), wire.AADJoinRequest, make([]byte, 200))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseSign1(signed); err != nil {
			b.Fatal(err)
		}
	}
}
