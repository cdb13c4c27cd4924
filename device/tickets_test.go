package device

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestSpentTicketsBoundedAndExact: the memory of used tickets keeps at most
// maxSpentTickets, and forgets none in a way that lets it be used again:
// every ticket spent once is refused after, whether still remembered or
// below the floor its eviction raised; a new ticket that expires later is
// taken. The same holds for a memory merged from another process's.
func TestSpentTicketsBoundedAndExact(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sid := func(i int) []byte { return binary.BigEndian.AppendUint64(make([]byte, 8), uint64(i)) }
	exp := func(i int) uint64 { return uint64(now.Unix()) + 600 + uint64(i) }
	var s SpentTickets
	const n = 3 * maxSpentTickets
	for i := range n {
		if !s.spend(sid(i), exp(i), now) {
			t.Fatalf("ticket %d refused the first time", i)
		}
		if len(s.SIDs) > maxSpentTickets {
			t.Fatalf("after %d tickets: %d remembered, bound %d", i+1, len(s.SIDs), maxSpentTickets)
		}
	}
	for i := range n {
		if s.spend(sid(i), exp(i), now) {
			t.Fatalf("ticket %d taken twice (floor %d)", i, s.Floor)
		}
	}
	var other SpentTickets
	if !other.spend(sid(n), exp(n), now) {
		t.Fatal("a fresh memory refused a new ticket")
	}
	other.merge(&s, now)
	for i := range n + 1 {
		if other.spend(sid(i), exp(i), now) {
			t.Fatalf("merged memory: ticket %d taken twice", i)
		}
	}
	// Expired tickets go, raising the floor: one expiring then is refused
	// even if the clock goes back.
	later := time.Unix(int64(exp(n))+1, 0)
	if !other.spend(sid(n+1), exp(n)+700, later) || len(other.SIDs) != 1 {
		t.Fatalf("after every ticket expired: %d remembered, want the new one", len(other.SIDs))
	}
	if other.spend(sid(0), exp(0), now) {
		t.Fatal("an expired ticket taken again with the clock back")
	}
}
