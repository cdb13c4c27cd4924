package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"

	"github.com/iotguard/iotguard/internal/coapbody"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Talk is the initiator's (M1's) side of a conversation with a peer device.
type Talk struct {
	conn    *client.Conn
	Session *Session
}

// Talk asks the device peerID listening at peerAddr to talk (docs/PROTOCOL.md
// §5.1). The peer verifies this device with the CH and answers with a ticket;
// a peer that got a warning refuses with an error wrapping ErrWarning.
func (d *Device) Talk(ctx context.Context, peerAddr, peerID string) (*Talk, error) {
	conn, err := dial(peerAddr)
	if err != nil {
		return nil, fmt.Errorf("failed to reach peer %s at %s: %w", peerID, peerAddr, err)
	}
	t, err := d.talk(ctx, conn, peerID)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

func (d *Device) talk(ctx context.Context, conn *client.Conn, peerID string) (*Talk, error) {
	hello, err := wire.Marshal(&wire.Hello{ID: d.st.ID})
	if err != nil {
		return nil, err
	}
	r, err := exchange(ctx, conn, codes.POST, "/talk", message.AppCBOR, hello)
	if err != nil {
		return nil, err
	}
	if !r.ok() {
		if strings.HasPrefix(string(r.body), "warning") {
			return nil, fmt.Errorf("%w: peer %s refused: %v", ErrWarning, peerID, r.err())
		}
		return nil, fmt.Errorf("peer %s refused: %w", peerID, r.err())
	}
	var resp wire.TalkResponse
	if err := wire.Decode(r.body, &resp); err != nil {
		return nil, fmt.Errorf("%w: /talk: %v", ErrBadResponse, err)
	}
	if resp.ID != peerID {
		return nil, fmt.Errorf("%w: expected peer %s, %s answered", ErrBadResponse, peerID, resp.ID)
	}
	s, err := d.OpenTicket(&resp.Ticket, peerID, d.st.ID, peerID)
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

// Listener is the responder's (M2's) side: a CoAP server with /talk and /m2m.
type Listener struct {
	d       *Device
	handle  Handler
	errs    func(error)
	srv     *udpserver.Server
	conn    *coapnet.UDPConn
	done    chan error
	mu      sync.Mutex
	session map[string]*Session // by session ID
	order   []string            // the IDs in session, oldest first
}

// Listen serves /talk and /m2m for this device on addr. Each peer that asks
// to talk is verified with the CH (a warning refuses it) and given a ticket;
// its messages go to handle. errs receives per-request failures.
func (d *Device) Listen(addr string, handle Handler, errs func(error)) (*Listener, error) {
	conn, err := coapnet.NewListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	if errs == nil {
		errs = func(error) {}
	}
	l := &Listener{d: d, handle: handle, errs: errs, conn: conn, done: make(chan error, 1), session: map[string]*Session{}}
	router := mux.NewRouter()
	router.Handle("/talk", mux.HandlerFunc(l.talk))
	router.Handle("/m2m", mux.HandlerFunc(l.m2m))
	l.srv = udp.NewServer(options.WithMux(router), options.WithErrors(errs), options.WithMaxMessageSize(wire.MaxPayload+256))
	go func() { l.done <- l.srv.Serve(conn) }()
	return l, nil
}

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// Close stops the listener.
func (l *Listener) Close() error {
	l.srv.Stop()
	<-l.done
	return nil
}

func (l *Listener) reply(w mux.ResponseWriter, code codes.Code, cf message.MediaType, body []byte) {
	if err := w.SetResponse(code, cf, bytes.NewReader(body)); err != nil {
		l.errs(fmt.Errorf("failed to answer %v: %w", w.Conn().RemoteAddr(), err))
	}
}

func (l *Listener) talk(w mux.ResponseWriter, r *mux.Message) {
	body, err := readPost(r, message.AppCBOR)
	if err != nil {
		l.reply(w, codes.BadRequest, message.TextPlain, []byte(err.Error()))
		return
	}
	var hello wire.Hello
	if err := wire.Decode(body, &hello); err != nil {
		l.reply(w, codes.BadRequest, message.TextPlain, []byte("malformed hello"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if v, err := l.d.Verify(ctx, hello.ID); err != nil {
		if errors.Is(err, ErrWarning) {
			err = &CodeError{Code: codes.Content, Diagnostic: v.Status.String()}
		}
		l.refuse(w, hello.ID, err)
		return
	}
	s, ticket, err := l.d.Session(ctx, hello.ID)
	if err != nil {
		l.refuse(w, hello.ID, err)
		return
	}
	resp, err := wire.Marshal(&wire.TalkResponse{ID: l.d.st.ID, Ticket: *ticket})
	if err != nil {
		l.reply(w, codes.InternalServerError, message.TextPlain, []byte("internal error"))
		return
	}
	l.add(s)
	l.reply(w, codes.Content, message.AppCBOR, resp)
}

// refuse answers a peer this device will not talk to. A CH verdict or
// refusal (err a *CodeError) is a warning, 4.03 "warning: <why>" (PROTOCOL.md
// §5.1); failing to reach the CH is 5.03.
func (l *Listener) refuse(w mux.ResponseWriter, peer string, err error) {
	var ce *CodeError
	switch {
	case errors.As(err, &ce):
		l.errs(fmt.Errorf("refused %s: warning: %s", peer, ce.Diagnostic))
		l.reply(w, codes.Forbidden, message.TextPlain, []byte("warning: "+ce.Diagnostic))
	default:
		l.errs(fmt.Errorf("cannot check %s with the CH: %w", peer, err))
		l.reply(w, codes.ServiceUnavailable, message.TextPlain, []byte("cluster head unavailable"))
	}
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

func (l *Listener) m2m(w mux.ResponseWriter, r *mux.Message) {
	body, err := readPost(r, message.AppCoseEncrypt0)
	if err != nil {
		l.reply(w, codes.BadRequest, message.TextPlain, []byte(err.Error()))
		return
	}
	m, err := protect.ParseM2M(body)
	if err != nil {
		l.reply(w, codes.BadRequest, message.TextPlain, []byte("malformed"))
		return
	}
	l.mu.Lock()
	s := l.session[string(m.SID)]
	l.mu.Unlock()
	if s == nil {
		l.reply(w, codes.Unauthorized, message.TextPlain, []byte("unknown session"))
		return
	}
	msg, err := s.open(m)
	if errors.Is(err, ErrReplay) {
		l.reply(w, codes.Unauthorized, message.TextPlain, []byte("replay"))
		return
	} else if err != nil {
		l.reply(w, codes.Unauthorized, message.TextPlain, []byte("unauthorized"))
		return
	}
	out, err := s.Seal(l.handle(s.Peer, msg))
	if err != nil {
		l.reply(w, codes.InternalServerError, message.TextPlain, []byte("internal error"))
		return
	}
	l.reply(w, codes.Changed, message.AppCoseEncrypt0, out)
}

func readPost(r *mux.Message, cf message.MediaType) ([]byte, error) {
	if r.Code() != codes.POST {
		return nil, errors.New("method not allowed")
	}
	if got, err := r.ContentFormat(); err != nil || got != cf {
		return nil, errors.New("unsupported content-format")
	}
	return coapbody.Read(r.Message)
}
