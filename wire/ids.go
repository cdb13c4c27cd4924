package wire

import "fmt"

// MaxIDLen is the longest device or cluster ID, in bytes.
const MaxIDLen = 64

// CheckID reports whether s is a valid device or cluster ID: 1–64 bytes of
// [A-Za-z0-9._-]. The narrow alphabet keeps IDs safe to print in logs and
// diagnostics and identical in every encoding.
func CheckID(s string) error {
	if len(s) == 0 || len(s) > MaxIDLen {
		return fmt.Errorf("%w: id must be 1-%d bytes, got %d", ErrMalformed, MaxIDLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: id has a byte outside [A-Za-z0-9._-] at %d", ErrMalformed, i)
		}
	}
	return nil
}
