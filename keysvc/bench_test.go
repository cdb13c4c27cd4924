package keysvc_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Benchmarks of the CH's crypto operations as the cluster head runs them:
// ES256 sign and verify, ECDH, the echo MAC, member-key derivation, and
// the AEAD work of a protected request and a session grant.

func benchService(b *testing.B) *keysvc.Service {
	b.Helper()
	s, err := keysvc.Open(b.TempDir(), cluster)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkSign(b *testing.B) {
	s := benchService(b)
	msg := make([]byte, 120) // a block header
	for b.Loop() {
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := benchService(b)
	msg := make([]byte, 120)
	sig, err := s.Sign(msg)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Verify(msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign1JoinResponse(b *testing.B) {
	s := benchService(b)
	payload := make([]byte, 220)
	for b.Loop() {
		if _, err := s.Sign1(wire.AADJoinResponse, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDH is the P-256 key agreement the CH runs once per member key.
func BenchmarkECDH(b *testing.B) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := priv.ECDH(peer.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

// benchMember returns a member of s with device-side keys for it.
func benchMember(b *testing.B, s *keysvc.Service, id string, nonce byte) (keysvc.Member, *protect.MemberKeys) {
	b.Helper()
	d := newDevice(b, id, nonce)
	k := d.keys(b, s)
	return d.member, &k
}

// BenchmarkMemberKeysCold derives a member key the CH has not cached: one
// ECDH and the HKDFs, then opens one request (AES-GCM). The budget of failed
// derivations is lifted (each of these fails); BenchmarkForgedColdBounded
// is the same request once that budget is spent.
func BenchmarkMemberKeysCold(b *testing.B) {
	benchCold(b, math.Inf(1))
}

// BenchmarkForgedColdBounded is BenchmarkMemberKeysCold's forged request,
// naming a member whose keys are in no cache, once forgeries have spent the
// budget of failed derivations: refused before any ECDH.
func BenchmarkForgedColdBounded(b *testing.B) {
	benchCold(b, 1e-9)
}

// benchCold opens a request whose member's keys are in no cache, under a
// budget of failed derivations refilled at perSecond (one place).
func benchCold(b *testing.B, perSecond float64) {
	s := benchService(b)
	s.SetFailedDerivations(perSecond, 1)
	m, k := benchMember(b, s, "sensor-a", 0x10)
	sealed, err := protect.SealRequest(k, cluster, "sensor-a", 1, protect.PathVerify, []byte{0xa0})
	if err != nil {
		b.Fatal(err)
	}
	req, err := protect.ParseRequest(sealed)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		n++
		m.CHNonce = []byte(fmt.Sprintf("%016d", n)) // a new join: nothing cached
		if _, err := s.OpenRequest(m, req, protect.PathVerify); err == nil {
			b.Fatal("opened under the wrong nonce")
		}
	}
}

// BenchmarkProtected is the CH's AEAD work of one protected request with a
// cached member key: open the request, seal the response.
func BenchmarkProtected(b *testing.B) {
	s := benchService(b)
	m, k := benchMember(b, s, "sensor-a", 0x10)
	pt, _ := wire.Marshal(&wire.VerifyRequest{Peer: "sensor-b"})
	sealed, err := protect.SealRequest(k, cluster, "sensor-a", 1, protect.PathVerify, pt)
	if err != nil {
		b.Fatal(err)
	}
	req, err := protect.ParseRequest(sealed)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.OpenRequest(m, req, protect.PathVerify); err != nil {
			b.Fatal(err)
		}
		if _, err := s.SealResponse(m, req, protect.PathVerify, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueSession(b *testing.B) {
	s := benchService(b)
	m1, _ := benchMember(b, s, "sensor-a", 0x10)
	m2, _ := benchMember(b, s, "sensor-b", 0x20)
	exp := time.Now().Add(time.Hour)
	for b.Loop() {
		if _, err := s.IssueSession(m1, m2, exp); err != nil {
			b.Fatal(err)
		}
	}
}
