package wire

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
)

// VerifyRotation checks a signed rotation (§6.1): a COSE_Sign1 by the old
// key it names, whose kid is that key's thumbprint, for cluster. It returns
// the rotation and both keys. It does not decide whether the old key is one
// the caller trusts: compare old with the key in force (or pinned).
func VerifyRotation(signed []byte, cluster string) (r *Rotation, old, new *ecdsa.PublicKey, err error) {
	s, err := ParseSign1(signed)
	if err != nil {
		return nil, nil, nil, err
	}
	var rot Rotation
	if err := Decode(s.Payload, &rot); err != nil {
		return nil, nil, nil, err
	}
	if rot.Cluster != cluster {
		return nil, nil, nil, fmt.Errorf("%w: rotation for cluster %q, not %q", ErrMalformed, rot.Cluster, cluster)
	}
	if old, err = ParsePublicKey(rot.Old); err != nil {
		return nil, nil, nil, err
	}
	if new, err = ParsePublicKey(rot.New); err != nil {
		return nil, nil, nil, err
	}
	thumb := Thumbprint(old)
	if !bytes.Equal(s.KID, thumb[:]) {
		return nil, nil, nil, fmt.Errorf("%w: rotation kid is not the old key's thumbprint", ErrMalformed)
	}
	if old.Equal(new) {
		return nil, nil, nil, fmt.Errorf("%w: rotation to the same key", ErrMalformed)
	}
	if err := s.Verify(old, AADRotation); err != nil {
		return nil, nil, nil, err
	}
	return &rot, old, new, nil
}

// FollowRotations checks that trusted (a thumbprint) leads to want through
// rotations (oldest first, as ClusterInfo carries them): from the first
// rotation whose old key has thumbprint trusted, through each rotation
// signed by the previous one's new key, to the end. It returns the trusted
// key, as that first rotation carries it. It fails with ErrBadSignature
// when trusted starts no chain, when a rotation after it is not signed by
// the key before it, or when the chain does not end in want.
func FollowRotations(trusted []byte, rotations [][]byte, cluster string, want *ecdsa.PublicKey) (*ecdsa.PublicKey, error) {
	var from, cur *ecdsa.PublicKey
	for i, signed := range rotations {
		_, old, new, err := VerifyRotation(signed, cluster)
		if err != nil {
			return nil, fmt.Errorf("rotation %d: %w", i, err)
		}
		thumb := Thumbprint(old)
		switch {
		case cur == nil && bytes.Equal(thumb[:], trusted):
			from = old
		case cur == nil:
			continue // a rotation from before the trusted key
		case !cur.Equal(old):
			return nil, fmt.Errorf("%w: rotation %d is not signed by the key before it", ErrBadSignature, i)
		}
		cur = new
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: no rotation from key %x", ErrBadSignature, trusted)
	}
	if !cur.Equal(want) {
		return nil, fmt.Errorf("%w: rotations from key %x do not lead to the key offered", ErrBadSignature, trusted)
	}
	return from, nil
}
