package device

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/iotguard/iotguard/protect"
)

// maxSpentTickets bounds the tickets a device remembers having used as
// initiator (~60 B each in its state file).
const maxSpentTickets = 256

// SpentTickets is what a device remembers of the tickets it used as the
// initiator of a talk (docs/PROTOCOL.md §5.1), so that it never starts the
// same session twice. IMPORTANT: a ticket does not say which hello it
// answers, so a /talk answer kept on the path can be handed to the device
// again while the ticket lives (10 min by default); a second session from
// it would start its M2M sequence numbers, the AES-GCM nonces under the
// session's keys, from 0 again. The memory is exact: a ticket whose
// expiry is at or below Floor is refused without looking further, and
// every ticket forgotten (expired, or the oldest when the memory is full)
// raises Floor to its expiry.
type SpentTickets struct {
	Floor uint64        `json:"floor,omitempty"`
	SIDs  []SpentTicket `json:"sids,omitempty"`
}

// SpentTicket is one ticket used: its session ID and expiry.
type SpentTicket struct {
	SID     []byte `json:"sid"`
	Expires uint64 `json:"expires"`
}

// spend records the ticket of session sid, expiring at expires, as used at
// now; it reports false, changing nothing, if it was used before (or may
// have been: at or below Floor).
func (s *SpentTickets) spend(sid []byte, expires uint64, now time.Time) bool {
	if expires <= s.Floor || slices.ContainsFunc(s.SIDs, func(e SpentTicket) bool { return bytes.Equal(e.SID, sid) }) {
		return false
	}
	s.SIDs = append(s.SIDs, SpentTicket{SID: bytes.Clone(sid), Expires: expires})
	s.forget(uint64(max(now.Unix(), 0)))
	return true
}

// merge adds what other remembers (another process's memory, read from the
// device file).
func (s *SpentTickets) merge(other *SpentTickets, now time.Time) {
	if other == nil {
		return
	}
	s.Floor = max(s.Floor, other.Floor)
	for _, e := range other.SIDs {
		if !slices.ContainsFunc(s.SIDs, func(m SpentTicket) bool { return bytes.Equal(m.SID, e.SID) }) {
			s.SIDs = append(s.SIDs, e)
		}
	}
	s.forget(uint64(max(now.Unix(), 0)))
}

// forget drops the tickets expired at now (a ticket is refused from its
// expiry on) and, past maxSpentTickets, the ones that expire first, raising
// Floor to each one's expiry.
func (s *SpentTickets) forget(now uint64) {
	slices.SortFunc(s.SIDs, func(a, b SpentTicket) int { return cmp.Compare(a.Expires, b.Expires) })
	drop := 0
	for drop < len(s.SIDs) && (s.SIDs[drop].Expires <= now || len(s.SIDs)-drop > maxSpentTickets || s.SIDs[drop].Expires <= s.Floor) {
		s.Floor = max(s.Floor, s.SIDs[drop].Expires)
		drop++
	}
	s.SIDs = slices.Delete(s.SIDs, 0, drop)
}

// spendTicket records, before the session is used, that this device used
// the ticket of session sid (expiring at expires), opened under the member
// keys opened, as initiator: in its state file too, under the file's lock
// and with what other processes of the device recorded there. It fails if
// the ticket was used before, or if opened are no longer the device's keys:
// a join meanwhile forgot the tickets used under them (saveJoin).
// Must be called with d.mu held.
func (d *Device) spendTicket(sid []byte, expires uint64, opened *protect.MemberKeys) error {
	now := d.now()
	return d.update(func() error {
		keys, err := d.memberKeys()
		if err != nil {
			return err
		}
		if keys != opened { // d.keys is derived again only after a change of key
			return fmt.Errorf("%w: ticket of session %x opened under member keys the device no longer holds (a join or re-key meanwhile)", ErrBadResponse, sid)
		}
		if !d.st.SpentTickets.spend(sid, expires, now) {
			return fmt.Errorf("%w: ticket of session %x was used before (a talk answer replayed)", ErrBadResponse, sid)
		}
		return nil
	})
}
