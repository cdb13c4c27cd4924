package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Talk is the initiator's (M1's) side of a conversation with a peer device.
type Talk struct {
	conn    *client.Conn
	Session *Session
}

// Talk asks the device peerID listening at peerAddr to talk (docs/PROTOCOL.md
// §5.1). The hello carries this device's talk proof; the peer has its CH
// check it and answers with a ticket. A peer that got a warning about this
// device refuses with a *Warning; one whose CH refused the proof, with an
// error matching ErrTalkProofRefused.
func (d *Device) Talk(ctx context.Context, peerAddr, peerID string) (*Talk, error) {
	hello, err := d.Hello(peerID)
	if err != nil {
		return nil, err
	}
	conn, err := dial(peerAddr)
	if err != nil {
		return nil, fmt.Errorf("failed to reach peer %s at %s: %w", peerID, peerAddr, err)
	}
	t, err := d.talk(ctx, conn, peerID, hello)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

// Hello returns a fresh hello of this device to peerID: its ID, the peer's,
// and a talk proof under this device's current member key (ErrNotJoined
// without one).
func (d *Device) Hello(peerID string) ([]byte, error) {
	proof, err := d.talkProof(peerID)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(&wire.Hello{ID: d.st.ID, Responder: peerID, Proof: proof})
}

func (d *Device) talk(ctx context.Context, conn *client.Conn, peerID string, hello []byte) (*Talk, error) {
	r, err := exchangeVerified(ctx, conn, codes.POST, "/talk", message.AppCBOR, hello)
	if err != nil {
		return nil, err
	}
	switch {
	case r.code == codes.Unauthorized: // §5.1: the peer or its CH refused the talk proof
		return nil, fmt.Errorf("peer %s refused the hello: %w: %w", peerID, ErrTalkProofRefused, r.err())
	case r.code == codes.Forbidden: // §5.1: the peer's CH warned about this device
		return nil, &Warning{Peer: peerID, Detail: string(r.body)}
	case !r.ok():
		return nil, fmt.Errorf("peer %s refused: %w", peerID, r.err())
	}
	var resp wire.TalkResponse
	if err := wire.Decode(r.body, &resp); err != nil {
		return nil, fmt.Errorf("%w: /talk: %v", ErrBadResponse, err)
	}
	if resp.ID != peerID {
		return nil, fmt.Errorf("%w: expected peer %s, %s answered", ErrBadResponse, peerID, resp.ID)
	}
	s, keys, err := d.openTicket(&resp.Ticket, peerID, d.st.ID, peerID)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	err = d.spendTicket(s.SID, resp.Ticket.Expires, keys)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &Talk{conn: conn, Session: s}, nil
}

// Send sends msg encrypted to the peer and returns its decrypted reply.
func (t *Talk) Send(ctx context.Context, msg []byte) ([]byte, error) {
	b, err := t.Session.Seal(msg)
	if err != nil {
		return nil, err
	}
	return t.SendRaw(ctx, b)
}

// SendRaw posts an already sealed message (tests use it to replay one) and
// opens the reply.
func (t *Talk) SendRaw(ctx context.Context, sealed []byte) ([]byte, error) {
	r, err := exchange(ctx, t.conn, codes.POST, "/m2m", message.AppCoseEncrypt0, sealed)
	if err != nil {
		return nil, err
	}
	if !r.ok() {
		return nil, r.err()
	}
	return t.Session.Open(r.body)
}

// Close ends the association with the peer.
func (t *Talk) Close() error { return t.conn.Close() }

// Handler receives each decrypted message from a peer and returns the reply
// to send back encrypted (may be empty).
type Handler func(from string, msg []byte) []byte

// maxSessions bounds a listener's memory; expired sessions go first, then
// the ones granted first.
const maxSessions = 256

// Defaults of a listener's CoAP edge: a device's peers are few and slow, and
// a /talk whose hello carries a well-formed, fresh proof for this device
// costs the listener a request to its CH.
const (
	DefaultListenRateLimit = 20               // requests/s per source
	listenTimeout          = 30 * time.Second // a /talk waits for the CH
	// DefaultListenAssociations bounds the peers' endpoints held at once
	// (~15 KiB each; twice the sessions a listener keeps), and
	// DefaultListenAssociationRate the new ones per second: a CH's bounds
	// would let a flood of spoofed endpoints take 150 MiB of a device.
	DefaultListenAssociations    = 2 * maxSessions
	DefaultListenAssociationRate = 50
)

// Listener is the responder's (M2's) side: /talk and /m2m on the CoAP edge
// the CH uses too (internal/coapedge): the same size limits, per-source rate
// limit and panic recovery.
type Listener struct {
	d      *Device
	handle Handler
	errs   func(error)
	edge   *coapedge.Server

	hellos  *helloCache
	forward forwarding

	mu      sync.Mutex
	session map[string]*Session // by session ID
	order   []string            // the IDs in session, oldest first
}

// ListenOption adjusts a Listener.
type ListenOption func(*listenConfig)

type listenConfig struct {
	rateLimit       float64
	associations    int
	associationRate float64
}

// WithListenRateLimit sets the requests per second allowed from one source
// (0: off); DefaultListenRateLimit otherwise.
func WithListenRateLimit(perSecond float64) ListenOption {
	return func(c *listenConfig) { c.rateLimit = perSecond }
}

// WithListenAssociations bounds the peers' source endpoints held at once and
// the new ones per second (0: no bound); DefaultListenAssociations and
// DefaultListenAssociationRate otherwise.
func WithListenAssociations(n int, perSecond float64) ListenOption {
	return func(c *listenConfig) { c.associations, c.associationRate = n, perSecond }
}

// Listen serves /talk and /m2m for this device on addr. Each peer that asks
// to talk with a valid talk proof is given a ticket (its CH checks the proof
// and the peer's membership; a warning refuses it); its messages go to
// handle. errs receives per-request failures and refusals.
func (d *Device) Listen(addr string, handle Handler, errs func(error), opts ...ListenOption) (*Listener, error) {
	if errs == nil {
		errs = func(error) {}
	}
	cfg := listenConfig{rateLimit: DefaultListenRateLimit, associations: DefaultListenAssociations, associationRate: DefaultListenAssociationRate}
	for _, o := range opts {
		o(&cfg)
	}
	l := &Listener{d: d, handle: handle, errs: errs, hellos: newHelloCache(maxHellos), session: map[string]*Session{}}
	edge, err := coapedge.Listen(addr, []coapedge.Resource{
		// A talk answer (the peer's ticket) is several times the hello: the
		// edge verifies the peer's address first (§5.1), before this device
		// asks its CH anything.
		{Path: "/talk", Method: codes.POST, Format: message.AppCBOR, Answers: []message.MediaType{message.AppCBOR},
			Large: true, Link: `rt="iotguard.talk"`, Handle: l.talk},
		{Path: "/m2m", Method: codes.POST, Format: message.AppCoseEncrypt0, Answers: []message.MediaType{message.AppCoseEncrypt0},
			Link: `rt="iotguard.m2m"`, Handle: l.m2m},
	}, coapedge.WithRateLimit(cfg.rateLimit), coapedge.WithTimeout(listenTimeout), coapedge.WithErrors(errs),
		coapedge.WithMaxAssociations(cfg.associations), coapedge.WithAssociationRate(cfg.associationRate),
		coapedge.WithMaxPayload(wire.MaxPayload))
	if err != nil {
		return nil, err
	}
	l.edge = edge
	return l, nil
}

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr { return l.edge.Addr() }

// Close stops the listener.
func (l *Listener) Close() error { return l.edge.Close() }

// talk serves a hello (PROTOCOL.md §5.1). What the listener can check
// itself — the proof is there, names this device, is fresh, and was not
// forwarded before — it checks before it asks its CH anything, and it asks
// nothing while its CH is silent (forwarding); the CH checks the rest in
// the one /session that forwards the proof. Nothing but an accepted proof of
// a current member touches the session table.
func (l *Listener) talk(ctx context.Context, r *coapedge.Request) coapedge.Response {
	var hello wire.Hello
	if err := wire.Decode(r.Body, &hello); err != nil {
		return coapedge.Diagnostic(codes.BadRequest, "malformed hello")
	}
	switch {
	case hello.Proof == nil:
		return l.refuseProof(hello.ID, "bad talk proof: missing")
	case hello.Responder != l.d.st.ID:
		return l.refuseProof(hello.ID, "bad talk proof: wrong responder")
	case hello.ID == l.d.st.ID: // what the CH would answer, without asking it
		return l.refuse(hello.ID, &CodeError{Code: codes.Forbidden, Diagnostic: "peer not a member: peer is the requester"})
	case !protect.TalkProofFresh(hello.Proof.Time, l.d.now()):
		return l.refuseProof(hello.ID, "bad talk proof: stale")
	case l.forward.paused(l.d.now()):
		return coapedge.Diagnostic(codes.ServiceUnavailable, "cluster head unavailable")
	case !l.hellos.claim(hello.Proof, l.d.now()):
		return l.refuseProof(hello.ID, "bad talk proof: replay")
	}
	s, ticket, err := l.d.session(ctx, hello.ID, hello.Proof)
	l.forward.done(err, l.d.now())
	if err != nil {
		var w *Warning
		if !errors.As(err, &w) { // the CH did not accept the proof: it may come again
			l.hellos.release(hello.Proof)
		}
		return l.refuse(hello.ID, err)
	}
	resp, err := wire.Marshal(&wire.TalkResponse{ID: l.d.st.ID, Ticket: *ticket})
	if err != nil {
		return coapedge.Diagnostic(codes.InternalServerError, "internal error")
	}
	l.add(s)
	return coapedge.Response{Code: codes.Content, Format: message.AppCBOR, Body: resp}
}

// refuseProof answers a hello whose talk proof was refused: 4.01 with the
// reason (PROTOCOL.md §5.1).
func (l *Listener) refuseProof(peer, why string) coapedge.Response {
	l.errs(fmt.Errorf("refused hello from %s: %s", peer, why))
	return coapedge.Diagnostic(codes.Unauthorized, why)
}

// refuse answers a peer whose hello the CH did not turn into a session
// (PROTOCOL.md §5.1): a proof the CH refused is 4.01 with the CH's
// diagnostic; a warning verdict, or a CH refusal of the session, 4.03
// "warning: <why>"; failing to get an answer from the CH, 5.03.
func (l *Listener) refuse(peer string, err error) coapedge.Response {
	var w *Warning
	var ce *CodeError
	why := ""
	switch {
	case errors.As(err, &w):
		why = w.Status.String()
	case errors.As(err, &ce) && ce.Code == codes.Unauthorized:
		return l.refuseProof(peer, ce.Diagnostic)
	case errors.As(err, &ce) && ce.Code == codes.Forbidden:
		why = ce.Diagnostic
	default:
		l.errs(fmt.Errorf("cannot check %s with the CH: %w", peer, err))
		return coapedge.Diagnostic(codes.ServiceUnavailable, "cluster head unavailable")
	}
	l.errs(fmt.Errorf("refused %s: warning: %s", peer, why))
	return coapedge.Diagnostic(codes.Forbidden, "warning: "+why)
}

func (l *Listener) add(s *Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.d.now()
	kept := l.order[:0]
	for _, sid := range l.order {
		if old, ok := l.session[sid]; ok && now.Before(old.Expires) && sid != string(s.SID) {
			kept = append(kept, sid)
		} else {
			delete(l.session, sid)
		}
	}
	// Full of live sessions: drop the oldest, never a newer one, so a peer
	// just handed a ticket can use it however busy this listener is.
	for len(kept) >= maxSessions {
		delete(l.session, kept[0])
		kept = kept[1:]
	}
	l.order = append(kept, string(s.SID))
	l.session[string(s.SID)] = s
}

func (l *Listener) m2m(_ context.Context, r *coapedge.Request) coapedge.Response {
	m, err := protect.ParseM2M(r.Body)
	if err != nil {
		return coapedge.Diagnostic(codes.BadRequest, "malformed")
	}
	l.mu.Lock()
	s := l.session[string(m.SID)]
	l.mu.Unlock()
	if s == nil {
		return coapedge.Diagnostic(codes.Unauthorized, "unknown session")
	}
	msg, err := s.open(m)
	if errors.Is(err, ErrReplay) {
		return coapedge.Diagnostic(codes.Unauthorized, "replay")
	} else if err != nil {
		return coapedge.Diagnostic(codes.Unauthorized, "unauthorized")
	}
	out, err := s.Seal(l.handle(s.Peer, msg))
	if err != nil {
		return coapedge.Diagnostic(codes.InternalServerError, "internal error")
	}
	// Authenticated: the message opened under the session key, its sequence
	// number fresh.
	return coapedge.Response{Code: codes.Changed, Format: message.AppCoseEncrypt0, Body: out, Authenticated: true}
}
