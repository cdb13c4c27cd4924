package bftledger

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/veraison/go-cose"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// MaxTxBytes is the largest transaction the application accepts. A join,
// the largest event (it carries the device's signed request), is well under
// 1 KiB.
const MaxTxBytes = 4096

// NonceLen is the length of a transaction's nonce.
const NonceLen = 16

// txDomain separates transaction signatures from every other ES256
// signature made with a CH key (blocks, COSE_Sign1 answers).
const txDomain = "iotguard-bft-tx-v1"

// Tx is one transaction: an event submitted by a cluster head. It is
// deterministic CBOR with integer keys.
type Tx struct {
	Cluster string       `cbor:"1,keyasint"` // the submitting cluster
	Nonce   []byte       `cbor:"2,keyasint"` // NonceLen random bytes: every signed transaction is unique
	Event   ledger.Event `cbor:"3,keyasint"`
	Sig     []byte       `cbor:"4,keyasint"` // ES256 (r ‖ s) by the cluster's CH key over SignedBytes
}

// SignedBytes returns what the CH signs: the deterministic CBOR array
// [txDomain, chainID, Cluster, Nonce, Event]. The chain ID keeps a
// transaction of one network from being replayed on another.
func (t *Tx) SignedBytes(chainID string) ([]byte, error) {
	b, err := wire.Marshal([]any{txDomain, chainID, t.Cluster, t.Nonce, t.Event})
	if err != nil {
		return nil, fmt.Errorf("failed to encode transaction of %s: %w", t.Cluster, err)
	}
	return b, nil
}

// Digest returns the SHA-256 of SignedBytes: the identity under which a
// transaction is applied at most once. It does not cover the signature, so a
// second valid signature over the same bytes is the same transaction.
func (t *Tx) Digest(chainID string) ([32]byte, error) {
	b, err := t.SignedBytes(chainID)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Encode returns the transaction's bytes.
func (t *Tx) Encode() ([]byte, error) {
	b, err := wire.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("failed to encode transaction of %s: %w", t.Cluster, err)
	}
	return b, nil
}

// DecodeTx decodes a transaction and accepts it only in the encoding Encode
// produces and within MaxTxBytes. Errors wrap ErrMalformedTx. It checks form,
// not signature.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedTx, len(b), MaxTxBytes)
	}
	var t Tx
	if err := wire.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedTx, err)
	}
	again, err := t.Encode()
	if err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in deterministic encoding", ErrMalformedTx)
	}
	if len(t.Nonce) != NonceLen {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrMalformedTx, len(t.Nonce))
	}
	return &t, nil
}

// Signer signs transactions with a cluster head's key; keysvc.Service
// implements it.
type Signer interface {
	// Sign returns an ES256 signature (r ‖ s) over msg.
	Sign(msg []byte) ([]byte, error)
	// COSEKey returns the public key as a COSE_Key, as registered in genesis.
	COSEKey() []byte
}

// verifyTx checks t's signature with v, the verifier of its cluster's key.
func verifyTx(t *Tx, chainID string, v cose.Verifier) error {
	msg, err := t.SignedBytes(chainID)
	if err != nil {
		return err
	}
	if err := v.Verify(msg, t.Sig); err != nil {
		return fmt.Errorf("%w: cluster %s", ErrBadSignature, t.Cluster)
	}
	return nil
}
