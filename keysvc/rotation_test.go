package keysvc_test

import (
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/wire"
)

// rotate runs one rotation the way the ledger and clusterhead do, with
// block height h.
func rotate(t *testing.T, s *keysvc.Service, dir string, h uint64) {
	t.Helper()
	rotation, next, err := s.PrepareRotation(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PrepareRotation(dir, time.Now()); !errors.Is(err, keysvc.ErrRotating) {
		t.Fatalf("second rotation while one runs: %v", err)
	}
	if _, _, _, err := wire.VerifyRotation(rotation, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignWith(next, []byte("block")); err != nil {
		t.Fatal(err)
	}
	s.Rotated(next)
	if err := s.FinishRotation(dir, h); err != nil {
		t.Fatal(err)
	}
}

// TestRotationsServed: after three rotations GET /cluster carries the last
// wire.MaxRotations; a device pinned to a key they start from follows them,
// one pinned to an older key does not. The key files hold every key, and a
// reopened Service has the same chain.
func TestRotationsServed(t *testing.T) {
	dir := t.TempDir()
	s, err := keysvc.Open(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var thumbs [][32]byte
	for h := uint64(1); h <= 3; h++ {
		thumbs = append(thumbs, s.Thumbprint())
		rotate(t, s, dir, h*10)
	}
	rot := s.Rotations()
	if len(rot) != wire.MaxRotations {
		t.Fatalf("%d rotations served, want %d", len(rot), wire.MaxRotations)
	}
	if _, err := wire.FollowRotations(thumbs[1][:], rot, "c1", s.PublicKey()); err != nil {
		t.Fatalf("pinned to the key the served rotations start from: %v", err)
	}
	if _, err := wire.FollowRotations(thumbs[0][:], rot, "c1", s.PublicKey()); !errors.Is(err, wire.ErrBadSignature) {
		t.Fatalf("pinned to an older key: %v, want ErrBadSignature", err)
	}
	again, err := keysvc.OpenExisting(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Keys()) != 4 || again.Thumbprint() != s.Thumbprint() || len(again.Rotations()) != wire.MaxRotations {
		t.Fatalf("reopened: %d keys, key %x (want %x)", len(again.Keys()), again.Thumbprint(), s.Thumbprint())
	}
}
