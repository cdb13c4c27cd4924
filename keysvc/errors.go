package keysvc

import (
	"errors"

	"github.com/iotguard/iotguard/internal/secretfile"
)

// ErrNoKey is returned by Load when the data directory holds no CH key.
var ErrNoKey = errors.New("no cluster head key")

// ErrKeyPermissions is returned when a key file is readable by group or
// others: it is secretfile.ErrPermissions, the one rule for every private
// key file.
var ErrKeyPermissions = secretfile.ErrPermissions

// ErrBadMemberKey is returned when a member's recorded public key cannot be
// used for ECDH.
var ErrBadMemberKey = errors.New("unusable member public key")

// ErrRotating is returned by PrepareRotation while another rotation is in
// progress.
var ErrRotating = errors.New("a key rotation is in progress")

// ErrNoRotation is returned by SignWith for a key no rotation prepared.
var ErrNoRotation = errors.New("no such key rotation in progress")

// ErrRekeyNotRecorded is returned when a member's first message under a
// newer CH key authenticated but its re-key could not be recorded: the
// message is refused (the device tries again) rather than answered under a
// key a restart would forget.
var ErrRekeyNotRecorded = errors.New("re-key not recorded")

// ErrDerivationsBusy is returned when a message names a member whose keys
// are in no cache while the places for derivations whose message fails to
// authenticate are spent (FailedDerivationRate): nothing was derived, and
// the member may send again.
var ErrDerivationsBusy = errors.New("too many member key derivations")
