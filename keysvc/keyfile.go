package keysvc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/internal/secretfile"
)

// Key files inside the data directory. Each PEM block is a PKCS#8 P-256
// key; a "From-Height" header gives the first ledger height it signed
// (absent: 0, the genesis key).
const (
	// KeyFile holds the key in force.
	KeyFile = "ch-key.pem"
	// RetiredFile holds the keys rotated out, oldest first: members that
	// joined under them still derive their K_m from them.
	RetiredFile = "ch-keys-retired.pem"
	// NextFile holds the key a rotation in progress installs; Start
	// finishes or abandons it (clusterhead.recoverRotation).
	NextFile = "ch-key-next.pem"
)

// PEM headers of a key block.
const (
	fromHeader     = "From-Height" // first ledger height it signed; absent: 0
	rotationHeader = "Rotation"    // base64 of the rotation (COSE_Sign1) that put it in force
)

// loadKeys loads the retired keys and the key in force of dir, oldest first,
// creating the key (0600) if create is set and there is none.
func loadKeys(dir string, create bool) ([]*chKey, error) {
	priv, from, rotation, err := loadOrCreate(filepath.Join(dir, KeyFile), create)
	if err != nil {
		return nil, err
	}
	cur, err := newCHKey(priv, from)
	if err != nil {
		return nil, err
	}
	cur.rotation = rotation
	keys, err := readKeys(filepath.Join(dir, RetiredFile))
	if errors.Is(err, fs.ErrNotExist) {
		return []*chKey{cur}, nil
	}
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(keys); i++ {
		if keys[i].from <= keys[i-1].from {
			return nil, fmt.Errorf("failed to use %s: key %d does not start after key %d", filepath.Join(dir, RetiredFile), i+1, i)
		}
	}
	if len(keys) > 0 && cur.from <= keys[len(keys)-1].from {
		return nil, fmt.Errorf("failed to use %s: the key in force does not start after the retired keys", filepath.Join(dir, KeyFile))
	}
	return append(keys, cur), nil
}

// readKeys reads every key of a key file (secretfile.Read: 0600 required).
func readKeys(path string) ([]*chKey, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	var keys []*chKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		priv, from, rotation, err := parseBlock(path, blk)
		if err != nil {
			return nil, err
		}
		k, err := newCHKey(priv, from)
		if err != nil {
			return nil, err
		}
		k.rotation = rotation
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("failed to parse %s: no PKCS#8 PEM private key", path)
	}
	return keys, nil
}

func parseBlock(path string, blk *pem.Block) (*ecdsa.PrivateKey, uint64, []byte, error) {
	if blk.Type != "PRIVATE KEY" {
		return nil, 0, nil, fmt.Errorf("failed to parse %s: not a PKCS#8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, 0, nil, fmt.Errorf("failed to use %s: not a P-256 key", path)
	}
	var from uint64
	if h, ok := blk.Headers[fromHeader]; ok {
		if from, err = strconv.ParseUint(h, 10, 64); err != nil {
			return nil, 0, nil, fmt.Errorf("failed to parse %s: %s header %q", path, fromHeader, h)
		}
	}
	var rotation []byte
	if h, ok := blk.Headers[rotationHeader]; ok {
		if rotation, err = base64.StdEncoding.DecodeString(h); err != nil {
			return nil, 0, nil, fmt.Errorf("failed to parse %s: %s header: %v", path, rotationHeader, err)
		}
	}
	return ec, from, rotation, nil
}

// encodeKey returns k as a PEM block with its From-Height.
func encodeKey(k *chKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("failed to encode CH key: %w", err)
	}
	blk := &pem.Block{Type: "PRIVATE KEY", Bytes: der, Headers: map[string]string{}}
	if k.from != 0 {
		blk.Headers[fromHeader] = strconv.FormatUint(k.from, 10)
	}
	if k.rotation != nil {
		blk.Headers[rotationHeader] = base64.StdEncoding.EncodeToString(k.rotation)
	}
	return pem.EncodeToMemory(blk), nil
}

// loadOrCreate reads the key at path, or, if create is set and no file
// exists, generates a P-256 key and writes it with mode 0600.
func loadOrCreate(path string, create bool) (*ecdsa.PrivateKey, uint64, []byte, error) {
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		k, err := generate(path)
		if errors.Is(err, fs.ErrExist) { // another process made one meanwhile: use it
			return loadOrCreate(path, false)
		}
		return k, 0, nil, err
	case errors.Is(err, fs.ErrNotExist):
		return nil, 0, nil, fmt.Errorf("%w at %s", ErrNoKey, path)
	case err != nil:
		return nil, 0, nil, fmt.Errorf("failed to stat key file: %w", err)
	}
	b, err := secretfile.Read(path)
	if err != nil {
		return nil, 0, nil, err
	}
	blk, rest := pem.Decode(b)
	if blk == nil || len(rest) != 0 && len(bytes.TrimSpace(rest)) != 0 {
		return nil, 0, nil, fmt.Errorf("failed to parse %s: not a PKCS#8 PEM private key", path)
	}
	return parseBlock(path, blk)
}

func generate(path string) (*ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data directory: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate CH key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("failed to encode CH key: %w", err)
	}
	// Create, not Write: a key another process wrote since the Stat above
	// (two first starts at once) must not be replaced; it may already
	// sign a ledger. The caller then loads that one.
	if err := atomicfile.Create(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// KeyFiles names the files of a data directory that hold CH private keys,
// the key in use first: what a backup copies.
func KeyFiles() []string { return []string{KeyFile, RetiredFile} }
