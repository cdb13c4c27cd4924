package ledger

import (
	"time"

	"github.com/iotguard/iotguard/membership"
)

// Device is the index record for one device ID: the state that replaying every
// event of the chain in order produces. Records exist only for IDs that some
// join has bound, so Key, Joined and the nonces are always set.
type Device struct {
	ID          string            `cbor:"1,keyasint"`
	Key         []byte            `cbor:"2,keyasint"`           // COSE_Key bytes; changes only when an enroll with Replace gave the ID to another key
	Status      membership.Status `cbor:"3,keyasint"`           // member, left or revoked: never unknown or expired
	Joined      BlockRef          `cbor:"4,keyasint"`           // block of the latest join
	Updated     BlockRef          `cbor:"5,keyasint"`           // block of the latest event that changed the record
	DeviceNonce []byte            `cbor:"6,keyasint"`           // of the latest join: with CHNonce, re-derives the member key after a restart
	CHNonce     []byte            `cbor:"7,keyasint"`           // of the latest join
	Expires     int64             `cbor:"8,keyasint,omitempty"` // membership expiry of the latest join (unix seconds)
	Lat         int64             `cbor:"9,keyasint,omitempty"` // microdegrees, of the latest join
	Lon         int64             `cbor:"10,keyasint,omitempty"`
	// Cluster is the cluster of the latest join on a ledger shared by
	// several clusters (bftledger); empty on a single-cluster ledger, whose
	// devices all belong to its one cluster.
	Cluster string `cbor:"11,keyasint,omitempty"`
}

// StatusAt returns d's standing at now: its stored status, except that a
// member whose membership has expired is membership.Expired (Expires 0 never
// expires). It is the one place that decides whether a record is a current
// member; the state machine, the cluster core, the CometBFT executor and the
// metrics all ask it.
func (d Device) StatusAt(now time.Time) membership.Status {
	if d.Status == membership.Member && d.Expires != 0 && now.Unix() >= d.Expires {
		return membership.Expired
	}
	return d.Status
}
