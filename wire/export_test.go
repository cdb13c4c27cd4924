package wire

import "crypto/cipher"

// AEADForTest returns the AES-128-GCM instance Seal and Open use for key, so
// the Wycheproof AES-GCM vectors (raw AAD, not an Enc_structure) run against
// the exact construction of this package.
func AEADForTest(key [KeySize]byte) (cipher.AEAD, error) {
	return NewKey(key).aead, nil
}
