package protect_test

import (
	"testing"
	"time"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Benchmarks of every protect operation a request, a ticket or an M2M
// message costs (AES-128-GCM, HKDF, CBOR of the AAD). Compare with benchstat.

const benchCluster = "cluster-1"

func benchMemberKeys(b *testing.B) *protect.MemberKeys {
	b.Helper()
	km, err := protect.MemberKey(make([]byte, 32), make([]byte, 16), make([]byte, 16), benchCluster, "sensor-a", [32]byte{})
	if err != nil {
		b.Fatal(err)
	}
	k := protect.DeriveMemberKeys(km)
	return &k
}

func BenchmarkMemberKey(b *testing.B) {
	z, n := make([]byte, 32), make([]byte, 16)
	for b.Loop() {
		km, err := protect.MemberKey(z, n, n, benchCluster, "sensor-a", [32]byte{})
		if err != nil {
			b.Fatal(err)
		}
		protect.DeriveMemberKeys(km)
	}
}

func BenchmarkRequest(b *testing.B) {
	k := benchMemberKeys(b)
	pt, err := wire.Marshal(&wire.VerifyRequest{Peer: "sensor-b"})
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := protect.SealRequest(k, benchCluster, "sensor-a", 1000, protect.PathVerify, pt)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := protect.SealResponse(k, benchCluster, "sensor-a", 1000, protect.PathVerify, pt)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("SealRequest", func(b *testing.B) {
		for b.Loop() {
			if _, err := protect.SealRequest(k, benchCluster, "sensor-a", 1000, protect.PathVerify, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OpenRequest", func(b *testing.B) {
		for b.Loop() {
			r, err := protect.ParseRequest(sealed)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Open(k, benchCluster, protect.PathVerify); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SealResponse", func(b *testing.B) {
		for b.Loop() {
			if _, err := protect.SealResponse(k, benchCluster, "sensor-a", 1000, protect.PathVerify, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OpenResponse", func(b *testing.B) {
		for b.Loop() {
			if _, err := protect.OpenResponse(k, benchCluster, "sensor-a", 1000, protect.PathVerify, resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTicket(b *testing.B) {
	k := benchMemberKeys(b)
	var sk [wire.KeySize]byte
	exp := time.Now().Add(time.Hour)
	base := wire.Ticket{SID: make([]byte, 16), Expires: uint64(exp.Unix()), Initiator: "sensor-a", Responder: "sensor-b", Recipient: "sensor-a"}
	sealed, err := protect.SealTicket(k.Ticket, benchCluster, base, sk)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Seal", func(b *testing.B) {
		for b.Loop() {
			if _, err := protect.SealTicket(k.Ticket, benchCluster, base, sk); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open", func(b *testing.B) {
		now := time.Now()
		for b.Loop() {
			if _, err := protect.OpenTicket(k.Ticket, benchCluster, "sensor-a", &sealed, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkM2M(b *testing.B) {
	var sk [wire.KeySize]byte
	sid := make([]byte, 16)
	b.Run("Derive", func(b *testing.B) {
		for b.Loop() {
			protect.DeriveM2M(sk, sid, "sensor-a", "sensor-b")
		}
	})
	k, _ := protect.DeriveM2M(sk, sid, "sensor-a", "sensor-b")
	msg := make([]byte, 32)
	sealed, err := protect.SealM2M(k, sid, "sensor-a", "sensor-b", 7, msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Seal", func(b *testing.B) {
		for b.Loop() {
			if _, err := protect.SealM2M(k, sid, "sensor-a", "sensor-b", 7, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			m, err := protect.ParseM2M(sealed)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Open(k, "sensor-b"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTalkProof: what an initiator pays to make a hello's proof (a
// nonce from the CSPRNG and one AES-GCM tag) and the CH to check one.
func BenchmarkTalkProof(b *testing.B) {
	k := benchMemberKeys(b)
	now := time.Now()
	p, err := protect.NewTalkProof(k.Talk, benchCluster, "sensor-a", "sensor-b", now)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("New", func(b *testing.B) {
		for b.Loop() {
			if _, err := protect.NewTalkProof(k.Talk, benchCluster, "sensor-a", "sensor-b", now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			if err := protect.VerifyTalkProof(k.Talk, benchCluster, "sensor-a", "sensor-b", p, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
