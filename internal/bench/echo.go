package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/coapsrv"
	"github.com/iotguard/iotguard/internal/coapedge"
)

// EchoServer is the bare go-coap baseline: one POST resource, /echo, that
// answers 2.05 with as many bytes as the request's first two bytes say
// (EchoRequest), on the same CoAP edge and settings as the cluster head's
// server (coapsrv.EdgeOptions: size limit, rate limit and association bounds
// off as the bench runs the CH, panic recovery, block-wise off) — in the
// process of the load, or in one of its own ('iotguard bench --serve-echo').
type EchoServer struct {
	edge *coapedge.Server
}

// MaxEchoAnswer is the largest answer the echo gives: the edge's payload
// limit, which every protected answer of the cluster head fits.
const MaxEchoAnswer = coapedge.DefaultMaxPayload

// echoFiller is what the echo answers with.
var echoFiller = bytes.Repeat([]byte{0xa5}, MaxEchoAnswer)

// EchoRequest returns a request body of reqSize bytes (at least 2) asking
// the echo for respSize bytes (at most MaxEchoAnswer).
func EchoRequest(reqSize, respSize int) []byte {
	b := bytes.Repeat([]byte{0x5a}, max(reqSize, 2))
	binary.BigEndian.PutUint16(b, uint16(min(respSize, MaxEchoAnswer)))
	return b
}

// echoAnswer is the answer to an echo request body (EchoRequest): as many
// bytes as its first two say. It reports false for a body too short to say,
// or one asking for more than MaxEchoAnswer.
func echoAnswer(body []byte) ([]byte, bool) {
	if len(body) < 2 || int(binary.BigEndian.Uint16(body)) > MaxEchoAnswer {
		return nil, false
	}
	return echoFiller[:binary.BigEndian.Uint16(body)], true
}

// StartEcho listens on addr (UDP host:port) and answers every POST /echo.
func StartEcho(addr string) (*EchoServer, error) {
	edge, err := coapedge.Listen(addr, []coapedge.Resource{{
		Path: "/echo", Method: codes.POST, Format: message.AppCoseEncrypt0, Answers: []message.MediaType{message.AppCoseEncrypt0},
		Handle: func(_ context.Context, r *coapedge.Request) coapedge.Response {
			answer, ok := echoAnswer(r.Body)
			if !ok {
				return coapedge.Diagnostic(codes.BadRequest, "echo: want a 2-byte answer size up to 1024")
			}
			// It stands for a protected exchange, whose answer the CH may
			// make larger than the request (it authenticated). Only the
			// bench loads it, on loopback.
			return coapedge.Response{Code: codes.Content, Format: message.AppCoseEncrypt0, Body: answer, Authenticated: true}
		},
	}}, coapsrv.EdgeOptions(coapsrv.WithRateLimit(0), coapsrv.WithMaxAssociations(0), coapsrv.WithAssociationRate(0),
		coapsrv.WithErrors(transportError))...)
	if err != nil {
		return nil, err
	}
	return &EchoServer{edge: edge}, nil
}

// ServeEcho starts the echo on addr, a loopback address: for
// 'iotguard bench --serve-echo', the baseline in a process of its own.
func ServeEcho(addr string) (*EchoServer, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	return StartEcho(addr)
}

// Addr returns the bound address.
func (s *EchoServer) Addr() string { return s.edge.Addr().String() }

// transportError takes go-coap's transport errors, which it would print to
// stdout — where the bench writes its JSON — as the device library does.
func transportError(err error) { slog.Debug("coap", "err", err) }

// Close stops the server.
func (s *EchoServer) Close() error { return s.edge.Close() }

// echoWorkers returns n workers, each with its own association to addr,
// posting reqSize bytes per op the way the device library does and reading
// respSize bytes back.
func echoWorkers(addr string, n, reqSize, respSize int) ([]worker, error) {
	body := EchoRequest(reqSize, respSize)
	ws := make([]worker, 0, n)
	for i := 0; i < n; i++ {
		a := &association{dial: func() (*client.Conn, error) { return udp.Dial(addr, options.WithErrors(transportError)) }}
		if err := a.redial(); err != nil {
			closeAll(ws)
			return nil, err
		}
		ws = append(ws, worker{
			op: func(ctx context.Context) error {
				conn, err := a.get()
				if err != nil {
					return err
				}
				return echoOnce(ctx, conn, body, respSize)
			},
			close: a.close,
		})
	}
	return ws, nil
}

// echoOnce is device.exchange without the device: build, Do, read, release.
// An answer of another size than respSize is an error: not our echo.
func echoOnce(ctx context.Context, conn *client.Conn, body []byte, respSize int) error {
	req, err := conn.NewPostRequest(ctx, "/echo", message.AppCoseEncrypt0, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer conn.ReleaseMessage(req)
	resp, err := conn.Do(req)
	if err != nil {
		return err
	}
	defer conn.ReleaseMessage(resp)
	if resp.Code() != codes.Content {
		return fmt.Errorf("echo answered %v", resp.Code())
	}
	b, err := resp.ReadBody()
	if err != nil {
		return err
	}
	if len(b) != respSize {
		return fmt.Errorf("echo answered %d bytes, not %d: not an iotguard bench echo", len(b), respSize)
	}
	return nil
}

// association is a raw CoAP client that moves to a new source port every
// midBudget requests.
type association struct {
	dial func() (*client.Conn, error)
	conn *client.Conn
	used int
}

func (a *association) redial() error {
	if a.conn != nil {
		a.conn.Close()
	}
	c, err := a.dial()
	if err != nil {
		return fmt.Errorf("failed to dial: %w", err)
	}
	a.conn, a.used = c, 0
	return nil
}

func (a *association) get() (*client.Conn, error) {
	if a.used++; a.used > midBudget {
		if err := a.redial(); err != nil {
			return nil, err
		}
		a.used = 1
	}
	return a.conn, nil
}

func (a *association) close() {
	if a.conn != nil {
		a.conn.Close()
	}
}

func closeAll(ws []worker) {
	for _, w := range ws {
		if w.close != nil {
			w.close()
		}
	}
}
