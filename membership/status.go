// Package membership is the vocabulary of membership that the ledger, the
// cluster core, the CometBFT executor, the metrics, the wire and the device
// library share: one Status type, so that a device's standing means the same
// thing wherever it is read. Which status a ledger record has at a given time
// is decided in one place, ledger.Device.StatusAt.
package membership

import "fmt"

// Status is the standing of a device ID. The values are stored in the
// ledger's index records (member, left, revoked) and never change meaning;
// unknown and expired are never stored, they are what a reader derives: no
// record at all, or a member record past its expiry.
//
// On the wire a /verify verdict carries a Status with its own numbering
// (docs/PROTOCOL.md §4.3); package wire owns that mapping.
type Status uint8

const (
	Unknown Status = 0 // no join has ever bound the ID
	Member  Status = 1 // joined and neither left nor revoked since, not expired
	Left    Status = 2 // left; may rejoin with the same key
	Revoked Status = 3 // revoked by the operator; final
	Expired Status = 4 // a member record past its expiry; rejoin renews it
)

// Current reports whether s is a current member: the only status under which
// a device may make protected requests or be granted a session.
func (s Status) Current() bool { return s == Member }

// String returns "unknown", "member", "left", "revoked", "expired", or
// "Status(n)". The names are the reasons of /verify warnings, the labels of
// the members metric and what the CLI prints.
func (s Status) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Member:
		return "member"
	case Left:
		return "left"
	case Revoked:
		return "revoked"
	case Expired:
		return "expired"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}
