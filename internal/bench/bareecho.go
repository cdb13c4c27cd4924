package bench

import (
	"errors"
	"log/slog"
	"net"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// BareEcho answers the echo's requests (EchoRequest) on a bare UDP socket,
// one datagram at a time on one goroutine, with go-coap's message codec and
// nothing else of its server: no association, no hand-off to another
// goroutine, no answer cache. It is not a CoAP server — it answers a
// retransmission again and ignores the path — but the floor under the echo
// baseline: what a round trip costs the load generator, the kernel and the
// machine alone ('iotguard bench --serve-echo ADDR --bare';
// docs/PERFORMANCE.md, "Round two, fourth part").
type BareEcho struct {
	conn *net.UDPConn
	done chan struct{}
}

// ServeBareEcho starts the bare echo on addr, a loopback address.
func ServeBareEcho(addr string) (*BareEcho, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	e := &BareEcho{conn: conn, done: make(chan struct{})}
	go e.serve()
	return e, nil
}

// Addr returns the bound address.
func (e *BareEcho) Addr() string { return e.conn.LocalAddr().String() }

// Close stops the echo and waits for its goroutine.
func (e *BareEcho) Close() error {
	err := e.conn.Close()
	<-e.done
	return err
}

func (e *BareEcho) serve() {
	defer close(e.done)
	in := make([]byte, 2048)
	out := make([]byte, 2048)
	for {
		n, from, err := e.conn.ReadFromUDPAddrPort(in)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			slog.Debug("bare echo", "err", err)
			continue
		}
		answer, ok := bareAnswer(in[:n], out)
		if !ok {
			continue
		}
		if _, err := e.conn.WriteToUDPAddrPort(answer, from); err != nil {
			slog.Debug("bare echo", "err", err)
		}
	}
}

// bareAnswer encodes into out the answer to datagram, piggybacked on the ACK
// of a Confirmable request: to a POST, 2.05 with as many bytes as its
// payload's first two say (4.00 if it asks for more than MaxEchoAnswer or
// says nothing); to any other method 4.05. It reports false for a datagram
// it does not answer: one that does not decode, is not Confirmable, or is
// empty (a ping).
func bareAnswer(datagram, out []byte) ([]byte, bool) {
	var opts [16]message.Option // the decoder fills these; it allocates none
	req := message.Message{Options: opts[:0]}
	_, err := coder.DefaultCoder.Decode(datagram, &req)
	if err != nil || req.Type != message.Confirmable || req.Code == codes.Empty {
		return nil, false
	}
	resp := message.Message{Token: req.Token, Code: codes.MethodNotAllowed, MessageID: req.MessageID, Type: message.Acknowledgement}
	if req.Code == codes.POST {
		resp.Code = codes.BadRequest
		if answer, ok := echoAnswer(req.Payload); ok {
			resp.Code = codes.Content
			resp.Options = message.Options{{ID: message.ContentFormat, Value: []byte{byte(message.AppCoseEncrypt0)}}}
			resp.Payload = answer
		}
	}
	n, err := coder.DefaultCoder.Encode(resp, out)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}
