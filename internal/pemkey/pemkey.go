// Package pemkey reads and writes the P-256 keys an operator handles as PEM
// files: fleet keys (the private one stays with the operator, mode 0600; the
// CH is given the public one) and device public keys to enroll.
package pemkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/internal/secretfile"
)

// Errors callers branch on.
var (
	// ErrPrivateKey is returned by ParsePublic for a PEM private key: where
	// a public key is expected, a private one is a mistake that would put a
	// secret where it does not belong (a fleet key on the CH).
	ErrPrivateKey = errors.New("a private key where a public key belongs")
	// ErrNotKey is returned for input that is not a PEM key of the expected
	// kind, or not a P-256 key.
	ErrNotKey = errors.New("not a P-256 key in PEM")
)

// Private and public PEM block types (PKCS#8, PKIX).
const (
	privateType = "PRIVATE KEY"
	publicType  = "PUBLIC KEY"
)

// Generate returns a fresh P-256 key.
func Generate() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate P-256 key: %w", err)
	}
	return k, nil
}

// CreatePrivate writes k to path as PKCS#8 PEM with mode 0600; it never
// replaces an existing file (fs.ErrExist).
func CreatePrivate(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("failed to encode private key: %w", err)
	}
	if err := atomicfile.Create(path, pem.EncodeToMemory(&pem.Block{Type: privateType, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// ReadPrivate reads a P-256 PKCS#8 PEM private key from path, refusing a
// file that group or others may access (secretfile.ErrPermissions).
func ReadPrivate(path string) (*ecdsa.PrivateKey, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != privateType {
		return nil, fmt.Errorf("%s: %w (want a %q block)", path, ErrNotKey, privateType)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	ec, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: %w", path, ErrNotKey)
	}
	return ec, nil
}

// EncodePublic returns pub as a PKIX PEM block.
func EncodePublic(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicType, Bytes: der}), nil
}

// ParsePublic parses a P-256 PKIX PEM public key. A PEM private key is
// ErrPrivateKey, anything else ErrNotKey.
func ParsePublic(b []byte) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	switch {
	case blk == nil:
		return nil, ErrNotKey
	case blk.Type == privateType || blk.Type == "EC PRIVATE KEY":
		return nil, ErrPrivateKey
	case blk.Type != publicType:
		return nil, fmt.Errorf("%w: a %q block", ErrNotKey, blk.Type)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	ec, ok := k.(*ecdsa.PublicKey)
	if err != nil || !ok || ec.Curve != elliptic.P256() {
		return nil, ErrNotKey
	}
	return ec, nil
}

// ReadPublic reads a P-256 PKIX PEM public key from path (ParsePublic).
func ReadPublic(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read public key: %w", err)
	}
	k, err := ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// IsPEM reports whether b holds a PEM block.
func IsPEM(b []byte) bool {
	blk, _ := pem.Decode(b)
	return blk != nil
}
