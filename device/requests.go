package device

import (
	"context"
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// protected sends a protected request to path. build returns the plaintext
// message for an echo value (nil at first); if the CH answers with an echo
// challenge (its first request from us since it started) the request is
// resent once, with a new sequence number and the echo inside. Only a
// challenge sealed for the request is the CH's (PROTOCOL.md §4.1): one
// forged on the path is an error, never a reason to send the request again
// (the CH may have served the first: a second session granted and recorded).
func (d *Device) protected(ctx context.Context, path string, build func(echo []byte) any, out wire.Validator) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.Membership == nil {
		return ErrNotJoined
	}
	var echo []byte
	for attempt := 0; ; attempt++ {
		seq, err := d.reserveSeq()
		if err != nil {
			return err
		}
		keys, err := d.memberKeys() // after reserveSeq: another process may have re-keyed the file
		if err != nil {
			return err
		}
		m := d.st.Membership
		pt, err := wire.Marshal(build(echo))
		if err != nil {
			return err
		}
		sent, err := protect.Seal(keys, m.Cluster, d.st.ID, seq, path, pt)
		if err != nil {
			return err
		}
		conn, err := d.association()
		if err != nil {
			return err
		}
		r, err := exchange(ctx, conn, codes.POST, "/"+path, message.AppCoseEncrypt0, sent.Body)
		if err != nil {
			return err
		}
		if !r.ok() {
			err := refusal(r, sent, keys)
			var ce *CodeError
			// Only the CH's challenge: its diagnostic sealed for this request
			// (the code and options are not: the diagnostic decides).
			if r.echo != nil && attempt == 0 && errors.As(err, &ce) && ce.Sealed && ce.Diagnostic == "echo required" {
				echo = r.echo
				continue
			}
			return err
		}
		plain, err := sent.OpenResponse(keys, r.body)
		if err != nil {
			return fmt.Errorf("%w: /%s: %v", ErrBadResponse, path, err)
		}
		if err := wire.Decode(plain, out); err != nil {
			return fmt.Errorf("%w: /%s: %v", ErrBadResponse, path, err)
		}
		return nil
	}
}

// refusal is the CH's refusal r of the protected request sent: a
// *CodeError, Sealed when its diagnostic was sealed for this request
// (PROTOCOL.md §4.1). Only a sealed refusal is the CH's; any other may have
// been forged on the path.
func refusal(r *response, sent *protect.Outgoing, keys *protect.MemberKeys) error {
	if !r.sealed {
		return r.err()
	}
	diag, err := sent.OpenRefusal(keys, r.body)
	if err != nil {
		return &CodeError{Code: r.code, Diagnostic: "sealed refusal does not open"}
	}
	return &CodeError{Code: r.code, Diagnostic: printable(diag), Sealed: true}
}

// Verify asks the CH whether peer is a current member. A verdict other than
// member is returned together with a *Warning.
func (d *Device) Verify(ctx context.Context, peer string) (*wire.VerifyResponse, error) {
	var resp wire.VerifyResponse
	err := d.protected(ctx, protect.PathVerify, func(echo []byte) any {
		return &wire.VerifyRequest{Peer: peer, Echo: echo}
	}, &resp)
	if err != nil {
		return nil, err
	}
	if resp.Peer != peer {
		return nil, fmt.Errorf("%w: /verify answered about %s, not %s", ErrBadResponse, resp.Peer, peer)
	}
	if !resp.Status.Current() {
		return &resp, &Warning{Peer: peer, Status: resp.Status.Membership()}
	}
	return &resp, nil
}

// Session asks the CH for a session with peer, the initiator who asked this
// device to talk. It returns this device's side of the session and the
// ticket to hand to the peer.
func (d *Device) Session(ctx context.Context, peer string) (*Session, *wire.Ticket, error) {
	return d.session(ctx, peer, nil)
}

// session is Session forwarding the peer's talk proof, if any (PROTOCOL.md
// §5.1). A peer that proved its identity but is not a current member is a
// *Warning; a proof the CH refused, a *CodeError 4.01.
func (d *Device) session(ctx context.Context, peer string, proof *wire.TalkProof) (*Session, *wire.Ticket, error) {
	var resp wire.SessionResponse
	err := d.protected(ctx, protect.PathSession, func(echo []byte) any {
		return &wire.SessionRequest{Peer: peer, Proof: proof, Echo: echo}
	}, &resp)
	if err != nil {
		return nil, nil, err
	}
	if v := resp.Warning; v != nil {
		if v.Peer != peer {
			return nil, nil, fmt.Errorf("%w: /session warned about %s, not %s", ErrBadResponse, v.Peer, peer)
		}
		return nil, nil, &Warning{Peer: peer, Status: v.Status.Membership()}
	}
	if resp.Ticket.Recipient != peer || resp.Ticket.Initiator != peer {
		return nil, nil, fmt.Errorf("%w: /session ticket is not for %s", ErrBadResponse, peer)
	}
	s, err := d.OpenTicket(resp.Grant, peer, peer, d.st.ID)
	if err != nil {
		return nil, nil, err
	}
	return s, resp.Ticket, nil
}

// talkProof returns this device's proof, under its current member key, that
// it asks responder to talk now (PROTOCOL.md §5.1).
func (d *Device) talkProof(responder string) (*wire.TalkProof, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys, err := d.memberKeys()
	if err != nil {
		return nil, err
	}
	return protect.NewTalkProof(keys.Talk, d.st.Membership.Cluster, d.st.ID, responder, d.now())
}

// OpenTicket opens a ticket sealed to this device for a session between
// initiator and responder (one of them this device, the other peer). It
// does not remember the ticket: Talk does (SpentTickets); a ticket opened
// twice starts two sessions with the same keys and sequence numbers.
func (d *Device) OpenTicket(t *wire.Ticket, peer, initiator, responder string) (*Session, error) {
	s, _, err := d.openTicket(t, peer, initiator, responder)
	return s, err
}

// openTicket is OpenTicket; it returns the member keys that opened the
// ticket too.
func (d *Device) openTicket(t *wire.Ticket, peer, initiator, responder string) (*Session, *protect.MemberKeys, error) {
	d.mu.Lock()
	keys, err := d.memberKeys()
	cluster := ""
	if m := d.st.Membership; m != nil {
		cluster = m.Cluster
	}
	d.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	if t.Initiator != initiator || t.Responder != responder {
		return nil, nil, fmt.Errorf("%w: ticket is for %s→%s, not %s→%s", ErrBadResponse, t.Initiator, t.Responder, initiator, responder)
	}
	sk, err := protect.OpenTicket(keys.Ticket, cluster, d.st.ID, t, d.now())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ticket: %v", ErrBadResponse, err)
	}
	return newSession(sk, t, d.st.ID, peer, d.now), keys, nil
}

// Leave ends this device's membership; its member key dies with it. The
// device keeps trusting its CH's key (State.TrustedCH).
func (d *Device) Leave(ctx context.Context) (*wire.LeaveResponse, error) {
	var resp wire.LeaveResponse
	err := d.protected(ctx, protect.PathLeave, func(echo []byte) any { return &wire.LeaveRequest{Echo: echo} }, &resp)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return &resp, d.update(func() error {
		d.st.Trusted = d.st.TrustedCH() // a state file from before devices kept it: from the membership it is leaving
		d.st.Membership, d.keys = nil, nil
		return nil
	})
}
