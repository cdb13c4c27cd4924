package bench

import (
	"time"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// payloadSizes returns the request and response payload sizes of one op of
// scenario s between members with IDs like id, so the echo baseline moves
// the same bytes. The keys are zero: only the sizes matter.
func payloadSizes(s, cluster, id string) (req, resp int, err error) {
	k := protect.DeriveMemberKeys([32]byte{})
	const seq = 1000 // a 2-byte partial IV, as most requests of a run have
	hash := make([]byte, wire.HashLen)
	exp := uint64(time.Now().Add(24 * time.Hour).Unix())
	seal := func(path string, reqMsg, respMsg any) error {
		pt, err := wire.Marshal(reqMsg)
		if err != nil {
			return err
		}
		b, err := protect.SealRequest(&k, cluster, id, seq, path, pt)
		if err != nil {
			return err
		}
		if pt, err = wire.Marshal(respMsg); err != nil {
			return err
		}
		r, err := protect.SealResponse(&k, cluster, id, seq, path, pt)
		req, resp = len(b), len(r)
		return err
	}
	switch s {
	case ScenarioSession:
		var t wire.Ticket
		t, err = protect.SealTicket(k.Ticket, cluster, wire.Ticket{SID: make([]byte, wire.NonceLen), Expires: exp, Initiator: id, Responder: id, Recipient: id}, [wire.KeySize]byte{})
		if err == nil {
			err = seal(protect.PathSession, &wire.SessionRequest{Peer: id}, &wire.SessionResponse{Grant: &t, Ticket: &t})
		}
	case ScenarioM2M:
		var b []byte
		send, _ := protect.DeriveM2M([wire.KeySize]byte{}, nil, id, id)
		b, err = protect.SealM2M(send, make([]byte, wire.NonceLen), id, id, seq, make([]byte, m2mMessage))
		req, resp = len(b), len(b)
	default:
		err = seal(protect.PathVerify, &wire.VerifyRequest{Peer: id}, &wire.VerifyResponse{Peer: id, Height: seq, BlockHash: hash, Expires: exp})
	}
	return req, resp, err
}
