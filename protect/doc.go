// Package protect owns the symmetric half of the protocol, shared by the CH
// and devices: the key schedule (K_m and the keys derived from it, M2M keys
// from Sk), nonce construction, and sealing/opening of protected requests and
// responses, tickets and M2M messages (docs/PROTOCOL.md §3.4–§5).
//
// It holds no state: callers own keys, sequence numbers and replay windows.
package protect
