package device

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/protect"
)

// Device is one device talking to its cluster head. Requests are serialized:
// a device has one sequence-number space and one CoAP exchange at a time.
type Device struct {
	mu     sync.Mutex
	st     *State
	path   string // where st is saved; "" keeps it in memory only
	pin    []byte // expected CH key thumbprint, besides the one the state trusts (checkCH)
	repin  []byte // the CH key thumbprint to trust instead of the state's, once joined
	now    func() time.Time
	server string

	connMu   sync.Mutex   // guards conn and hostport's use; never held while waiting on d.mu
	conn     *client.Conn // the association to the CH (association())
	hostport string
	closed   bool // Close was called: no new association

	keys *protect.MemberKeys // derived from st.Membership, lazily

	credential []byte // overrides st.Credential in joins; nil: use st.Credential
	noLogCheck bool   // Join and Rekey do not prove the join in the CH's log

	// echo is an Echo the CH made for this association: the one the last
	// join signed. The log check's GET carries it, so that the CH does not
	// challenge an address it has verified (RFC 9175 §2.4); a stale one
	// draws the challenge, as none would.
	echo []byte
}

// Option adjusts a Device.
type Option func(*Device)

// WithStateFile saves the state to path on every change (0600): the
// membership after a join and the sequence number before every request.
func WithStateFile(path string) Option { return func(d *Device) { d.path = path } }

// WithPin makes the device accept only a CH whose key has this RFC 9679
// thumbprint. A device that has joined already trusts the key of its first
// join (State.TrustedCH); a pin cannot override that, a re-pin can.
func WithPin(thumbprint []byte) Option { return func(d *Device) { d.pin = thumbprint } }

// WithCredential makes the device's joins carry credential (a fleet
// credential, docs/PROTOCOL.md §3.5) instead of the one in its state, without
// storing it there.
func WithCredential(credential []byte) Option { return func(d *Device) { d.credential = credential } }

// WithRepin makes the device accept only a CH whose key has this RFC 9679
// thumbprint, instead of the key it trusts, and trust it from its next join
// on. IMPORTANT: it is the operator's decision that the CH key really
// changed; the thumbprint must come out of band (the CH's start-up log, or
// GET /cluster on the CH's own host), never from the answer it is to trust.
func WithRepin(thumbprint []byte) Option { return func(d *Device) { d.repin = thumbprint } }

// WithoutLogCheck makes Join (and Rekey) skip proving the join in the CH's transparency
// log (CheckJoin): for load generators that measure the join exchange alone.
func WithoutLogCheck() Option { return func(d *Device) { d.noLogCheck = true } }

// WithClock sets the clock used for expiry checks (tests).
func WithClock(now func() time.Time) Option { return func(d *Device) { d.now = now } }

// Dial opens a CoAP/UDP association from st's device to the CH at server
// ("coap://host:port" or "host:port").
func Dial(server string, st *State, opts ...Option) (*Device, error) {
	d := &Device{st: st, now: time.Now, server: server}
	for _, o := range opts {
		o(d)
	}
	d.hostport = strings.TrimSuffix(strings.TrimPrefix(server, "coap://"), "/")
	conn, err := dial(d.hostport)
	if err != nil {
		return nil, fmt.Errorf("failed to reach cluster head %s: %w", server, err)
	}
	d.conn = conn
	return d, nil
}

// association returns the device's CoAP association to its CH, dialling a
// new one if the last one ended. A go-coap association ends for good on a
// read error, e.g. an ICMP port unreachable: the CH restarting, or one
// forged by anyone who guesses the device's source port. Without a new one,
// a long-running device (a listener) would be cut off its CH until it
// restarts.
func (d *Device) association() (*client.Conn, error) {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("failed to reach cluster head %s: device closed", d.server)
	}
	select {
	case <-d.conn.Done():
	default:
		return d.conn, nil
	}
	conn, err := dial(d.hostport)
	if err != nil {
		return nil, fmt.Errorf("failed to reach cluster head %s: %w", d.server, err)
	}
	d.conn = conn
	return conn, nil
}

// dial opens a CoAP/UDP association to addr. go-coap prints the transport
// errors of an association to stdout unless told otherwise (a retransmission
// that gave up, long after its request failed with a timeout); they would
// corrupt what a CLI prints there, so they go to the debug log.
func dial(addr string) (*client.Conn, error) {
	return udp.Dial(addr, options.WithErrors(func(err error) { slog.Debug("coap client", "peer", addr, "err", err) }))
}

// Close ends the association; the device makes no other.
func (d *Device) Close() error {
	d.connMu.Lock()
	d.closed = true
	conn := d.conn
	d.connMu.Unlock()
	return conn.Close()
}

// ID returns the device ID.
func (d *Device) ID() string { return d.st.ID }

// Membership returns a copy of the current membership, or nil.
func (d *Device) Membership() *Membership {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.Membership == nil {
		return nil
	}
	m := *d.st.Membership
	return &m
}

// PSK returns the device's coaps identity and PSK (State.PSK).
func (d *Device) PSK() (identity string, psk []byte, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.PSK()
}

func (d *Device) save() error {
	if d.path == "" {
		return nil
	}
	return d.st.Save(d.path)
}

// response is what the device reads from a CoAP answer.
type response struct {
	code   codes.Code
	sealed bool // Content-Format 16: a COSE_Encrypt0 (a protected answer or refusal)
	body   []byte
	echo   []byte
	maxAge time.Duration // the Max-Age option; CoAP's default, 60 s, without one
}

func (r *response) err() error {
	return &CodeError{Code: r.code, Diagnostic: printable(string(r.body))}
}

func (r *response) ok() bool { return r.code>>5 == 2 }

// exchange sends one request and reads the answer. A Padding option among
// opts (padded) is sized so that the request is coapedge.PaddedRequest
// bytes (coapedge.Pad).
func exchange(ctx context.Context, conn *client.Conn, method codes.Code, path string, cf message.MediaType, body []byte, opts ...message.Option) (*response, error) {
	req, err := conn.NewPostRequest(ctx, path, cf, bytes.NewReader(body), opts...)
	if method == codes.GET {
		req, err = conn.NewGetRequest(ctx, path, opts...)
	}
	if err == nil && req.HasOption(coapedge.OptionPadding) {
		coapedge.Pad(req)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to build %s request: %w", path, err)
	}
	defer conn.ReleaseMessage(req)
	resp, err := conn.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed %s %s: %w", method, path, err)
	}
	defer conn.ReleaseMessage(resp)
	r := &response{code: resp.Code(), maxAge: 60 * time.Second}
	if f, err := resp.ContentFormat(); err == nil {
		r.sealed = f == message.AppCoseEncrypt0
	}
	if a, err := resp.GetOptionUint32(message.MaxAge); err == nil {
		r.maxAge = time.Duration(a) * time.Second
	}
	if resp.Body() != nil {
		if r.body, err = resp.ReadBody(); err != nil {
			return nil, fmt.Errorf("failed to read %s response: %w", path, err)
		}
	}
	if e, err := resp.Echo(); err == nil {
		r.echo = append([]byte{}, e...)
	}
	return r, nil
}

// exchangeVerified is exchange for a resource whose answer is several times
// its request (the CH's public GETs, /talk): a server that has not verified this
// association's address first answers 4.01 with an Echo option (RFC 9175
// §2.4), and the request is sent again, once, carrying that Echo. The
// response carries the echo of either round trip (r.echo), which a join
// may use (docs/PROTOCOL.md §3.1).
func exchangeVerified(ctx context.Context, conn *client.Conn, method codes.Code, path string, cf message.MediaType, body []byte, opts ...message.Option) (*response, error) {
	r, err := exchange(ctx, conn, method, path, cf, body, opts...)
	if err != nil || r.code != codes.Unauthorized || r.echo == nil {
		return r, err
	}
	challenge := r.echo
	// The challenge's Echo verifies the address, in place of any other one:
	// the request needs no padding now.
	opts = slices.DeleteFunc(slices.Clone(opts), func(o message.Option) bool {
		return o.ID == coapedge.OptionPadding || o.ID == message.Echo
	})
	if r, err = exchange(ctx, conn, method, path, cf, body, append(opts, message.Option{ID: message.Echo, Value: challenge})...); err != nil {
		return nil, err
	}
	if r.echo == nil {
		r.echo = challenge
	}
	return r, nil
}
