package ledger

import (
	"bytes"
	"fmt"

	"github.com/iotguard/iotguard/wire"
)

// joinEvidence checks a join event against the evidence it carries: the
// device's signed join request (a COSE_Sign1) must name the event's device
// (as its ID and kid), key, position and device nonce. With signature, it
// also verifies the request's signature under that key. It returns the
// request.
//
// Append checks the shape (every backend, deterministic and cheap: the CH
// verified the signature before it appended); Verify checks the signature
// too, so an auditor does not have to trust that the CH checked it: a join
// whose evidence does not match is a bad block.
func joinEvidence(ev Event, signature bool) (wire.JoinRequest, error) {
	signed, err := wire.ParseSign1(ev.Request)
	if err != nil {
		return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence is not a COSE_Sign1", ErrInvalidEvent, ev.Device)
	}
	var req wire.JoinRequest
	if err := wire.Decode(signed.Payload, &req); err != nil {
		return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence is not a join request", ErrInvalidEvent, ev.Device)
	}
	switch {
	case req.ID != ev.Device || string(signed.KID) != ev.Device:
		return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence is the join of %q", ErrInvalidEvent, ev.Device, req.ID)
	case !bytes.Equal(req.Key, ev.Key):
		return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence carries another key", ErrInvalidEvent, ev.Device)
	case req.Lat != ev.Lat || req.Lon != ev.Lon:
		return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence claims another position", ErrInvalidEvent, ev.Device)
	case !bytes.Equal(req.Nonce, ev.DeviceNonce):
		return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence carries another device nonce", ErrInvalidEvent, ev.Device)
	}
	if signature {
		pub, err := wire.ParsePublicKey(req.Key)
		if err != nil {
			return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence key: %v", ErrInvalidEvent, ev.Device, err)
		}
		if err := signed.Verify(pub, wire.AADJoinRequest); err != nil {
			return wire.JoinRequest{}, fmt.Errorf("%w: join of device %q: evidence signature does not verify under the device key", ErrInvalidEvent, ev.Device)
		}
	}
	return req, nil
}

// VerifyJoinEvidence checks a join event's evidence, signature included,
// and returns the device's join request: what Verify does for every join,
// for ledgers kept outside this package (bftledger).
func VerifyJoinEvidence(ev Event) (wire.JoinRequest, error) { return joinEvidence(ev, true) }
