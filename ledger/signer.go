package ledger

// Signer signs the encoded header of every new block. The cluster head's key
// implements it (keysvc).
type Signer interface {
	// Sign returns a signature over msg, the deterministic CBOR encoding of a
	// header. It must not retain msg.
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks block signatures, normally with the cluster head's public key.
type Verifier interface {
	// Verify returns nil only if sig is a valid signature over msg.
	Verify(msg, sig []byte) error
}
