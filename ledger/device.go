package ledger

import "fmt"

// Status is the membership state of a device in the index.
type Status uint8

const (
	StatusMember  Status = 1 // joined and neither left nor revoked since
	StatusLeft    Status = 2 // left; may rejoin with the same key
	StatusRevoked Status = 3 // revoked; final
)

// String returns "member", "left", "revoked", or "Status(n)".
func (s Status) String() string {
	switch s {
	case StatusMember:
		return "member"
	case StatusLeft:
		return "left"
	case StatusRevoked:
		return "revoked"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Device is the index record for one device ID: the state that replaying every
// event of the chain in order produces. Records exist only for IDs that some
// join has bound, so Key, Joined and the nonces are always set.
type Device struct {
	ID          string   `cbor:"1,keyasint"`
	Key         []byte   `cbor:"2,keyasint"` // COSE_Key bytes; never changes once bound
	Status      Status   `cbor:"3,keyasint"`
	Joined      BlockRef `cbor:"4,keyasint"`           // block of the latest join
	Updated     BlockRef `cbor:"5,keyasint"`           // block of the latest event that changed the record
	DeviceNonce []byte   `cbor:"6,keyasint"`           // of the latest join: with CHNonce, re-derives the member key after a restart
	CHNonce     []byte   `cbor:"7,keyasint"`           // of the latest join
	Expires     int64    `cbor:"8,keyasint,omitempty"` // membership expiry of the latest join (unix seconds)
	Lat         int64    `cbor:"9,keyasint,omitempty"` // microdegrees, of the latest join
	Lon         int64    `cbor:"10,keyasint,omitempty"`
	// Cluster is the cluster of the latest join on a ledger shared by
	// several clusters (bftledger); empty on a single-cluster ledger, whose
	// devices all belong to its one cluster.
	Cluster string `cbor:"11,keyasint,omitempty"`
}
