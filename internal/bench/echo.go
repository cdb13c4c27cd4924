package bench

import (
	"bytes"
	"context"
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
// answers 2.05 with a fixed body, on the same CoAP edge and settings as the
// cluster head's server (coapsrv.EdgeOptions: size limit, rate limit and
// association bounds off as the bench runs the CH, panic recovery, block-wise
// off) and in the same
// process as the load, so the ratios compare like with like.
type EchoServer struct {
	edge *coapedge.Server
}

// StartEcho listens on addr (UDP host:port) and answers every POST /echo
// with respSize bytes.
func StartEcho(addr string, respSize int) (*EchoServer, error) {
	resp := bytes.Repeat([]byte{0xa5}, respSize)
	edge, err := coapedge.Listen(addr, []coapedge.Resource{{
		Path: "/echo", Method: codes.POST, Format: message.AppCoseEncrypt0, Answers: []message.MediaType{message.AppCoseEncrypt0},
		Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			// It stands for a protected exchange, whose answer the CH may
			// make larger than the request (it authenticated).
			return coapedge.Response{Code: codes.Content, Format: message.AppCoseEncrypt0, Body: resp, Authenticated: true}
		},
	}}, coapsrv.EdgeOptions(coapsrv.WithRateLimit(0), coapsrv.WithMaxAssociations(0), coapsrv.WithAssociationRate(0),
		coapsrv.WithErrors(transportError))...)
	if err != nil {
		return nil, err
	}
	return &EchoServer{edge: edge}, nil
}

// Addr returns the bound address.
func (s *EchoServer) Addr() string { return s.edge.Addr().String() }

// transportError takes go-coap's transport errors, which it would print to
// stdout — where the bench writes its JSON — as the device library does.
func transportError(err error) { slog.Debug("coap", "err", err) }

// Close stops the server.
func (s *EchoServer) Close() error { return s.edge.Close() }

// echoWorkers returns n workers, each with its own association to addr,
// posting reqSize bytes per op the way the device library does.
func echoWorkers(addr string, n, reqSize int) ([]worker, error) {
	body := bytes.Repeat([]byte{0x5a}, reqSize)
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
				return echoOnce(ctx, conn, body)
			},
			close: a.close,
		})
	}
	return ws, nil
}

// echoOnce is device.exchange without the device: build, Do, read, release.
func echoOnce(ctx context.Context, conn *client.Conn, body []byte) error {
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
	if _, err := resp.ReadBody(); err != nil {
		return err
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
