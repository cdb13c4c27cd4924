package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"

	"github.com/iotguard/iotguard/internal/coapbody"
)

// EchoServer is the bare go-coap baseline: one POST resource, /echo, that
// answers 2.05 with a fixed body, on the same server options as the cluster
// head's CoAP server (coapsrv) and in the same process as the load.
type EchoServer struct {
	srv  *udpserver.Server
	conn *coapnet.UDPConn
	done chan error
}

// StartEcho listens on addr (UDP host:port) and answers every POST /echo
// with respSize bytes.
func StartEcho(addr string, respSize int) (*EchoServer, error) {
	conn, err := coapnet.NewListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	resp := bytes.Repeat([]byte{0xa5}, respSize)
	router := mux.NewRouter()
	router.Handle("/echo", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		if _, err := coapbody.Read(r.Message); err != nil {
			_ = w.SetResponse(codes.BadRequest, message.TextPlain, nil)
			return
		}
		_ = w.SetResponse(codes.Content, message.AppCoseEncrypt0, bytes.NewReader(resp))
	}))
	s := &EchoServer{conn: conn, done: make(chan error, 1)}
	s.srv = udp.NewServer(
		options.WithMux(router),
		options.WithErrors(transportError),
		options.WithMaxMessageSize(64*1024),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
	)
	go func() { s.done <- s.srv.Serve(conn) }()
	return s, nil
}

// Addr returns the bound address.
func (s *EchoServer) Addr() string { return s.conn.LocalAddr().String() }

// transportError takes go-coap's transport errors, which it would print to
// stdout — where the bench writes its JSON — as the device library does.
func transportError(err error) { slog.Debug("coap", "err", err) }

// Close stops the server.
func (s *EchoServer) Close() error {
	s.srv.Stop()
	<-s.done
	return nil
}

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
	if _, err := coapbody.Read(resp); err != nil {
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
