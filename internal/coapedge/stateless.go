package coapedge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/client"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// A request from a source endpoint that has no association is served
// without one, unless its resource is not Stateless or it has an unknown
// critical option: go-coap makes none (its AcceptConn
// hook hands the datagram over, third_party/README.md patch 9), the edge
// decodes it, runs it through the same handler, stages and bound as any
// other, and writes the answer on the socket. A device — a padded GET
// /cluster and a join, then a member's protected requests — then costs the
// CH no connection object and no cache of answers of its own, for 16 s
// each: ~5 KiB, and CPU per request (docs/PERFORMANCE.md, round two's
// fifth and fifteenth parts). And a member's requests need no place in the
// association cap, which spoofed new source endpoints can fill.
//
// What an association gave such a request, a duplicate (a CON
// retransmitted because its answer was lost) answered from its cache, this
// path gives the answers a duplicate must draw again, those to requests
// that authenticated (kept.go): a protected request's replay window would
// refuse its duplicate. A duplicate of any other request is served again,
// as RFC 7252 §4.5 lets a server do for an idempotent request: a safe GET,
// or a refusal, which changes nothing.

// MaxStateless bounds the requests served without an association at once.
// A datagram beyond it is dropped (DropStatelessBusy) and its sender
// retransmits, as when an association's queue is full. Each holds a
// goroutine (a few KiB of stack) while its handler runs; a join's waits for
// its block: ~1–2 ms on bbolt, a consensus round (~1 s) on CometBFT, where
// the bound is what caps joins a second. Requests to a costly resource (a
// join) take at most half of it (DropCostlyBusy beyond): a flood of them —
// a signature check each, then a wait for a block — leaves the other half
// to members' requests, which a full MaxStateless would drop.
const MaxStateless = 4096

// stateless serves the requests of sources without an association.
type stateless struct {
	paths    [][]string         // the paths of the resources not Stateless, by segment
	costly   [][]string         // the paths of the Stateless resources whose Cost is more than one
	max      int                // requests served at once (MaxStateless, or a test's); costly ones, half
	workers  *client.WorkerPool // goroutines kept between requests
	messages *pool.Pool         // requests and answers, reused
	inFlight atomic.Int64       // requests being served
	inCostly atomic.Int64       // of which costly
	done     sync.WaitGroup     // the same, for Close to wait on
	mid      atomic.Uint32      // the message ID of the next NON answer
	kept     *keptAnswers       // the answers a duplicate draws again
	conn     *coapnet.UDPConn   // the socket the answers go out on
	ctx      context.Context    // the server's life: the requests' context
	cancel   context.CancelFunc // ends ctx
}

// close waits for the requests being served, then ends their context.
// Called once the read loop has ended, so that none is taken meanwhile.
func (st *stateless) close() {
	st.done.Wait()
	st.cancel()
}

func newStateless(resources []Resource, conn *coapnet.UDPConn, max, maxKept int) *stateless {
	ctx, cancel := context.WithCancel(context.Background())
	st := &stateless{cancel: cancel, max: max, workers: client.NewWorkerPool(10 * time.Second), messages: pool.New(1024, 2048), conn: conn, ctx: ctx,
		kept: newKeptAnswers(maxKept)}
	st.mid.Store(rand.Uint32())
	for _, res := range resources {
		switch {
		case !res.Stateless:
			st.paths = append(st.paths, pathSegments(res.Path))
		case res.Cost > 1:
			st.costly = append(st.costly, pathSegments(res.Path))
		}
	}
	return st
}

// take decides, on go-coap's read loop, whether the datagram from raddr, a
// source endpoint without an association, is a request to serve without
// one (serves), and if so hands it, decoded, to a worker and reports true:
// go-coap then makes no association for it. A duplicate of a request whose
// answer is kept draws that answer, within its source's rate limit. What it
// cannot decode it leaves to go-coap, which drops it. The decoded message
// owns a copy of the datagram: go-coap's read buffer is reused at once.
func (s *Server) take(raddr *net.UDPAddr, cm *coapnet.ControlMessage, datagram []byte) bool {
	st := s.stateless
	if st == nil {
		return false
	}
	key, now := st.kept.key(raddr, datagram), s.cfg.now()
	if answer, ok := st.kept.get(key, now); ok {
		if !s.sources.allow(raddr, now) {
			s.dropped(DropSourceRate)
			return true
		}
		return s.work(false, func() { s.writeStateless(raddr, cm, answer) })
	}
	req := st.messages.AcquireMessage(st.ctx)
	if _, err := req.UnmarshalWithDecoder(coder.DefaultCoder, datagram); err != nil || !st.serves(req) {
		st.messages.ReleaseMessage(req)
		return false
	}
	if !s.work(anyPath(req.Options(), st.costly), func() { s.serveStateless(raddr, cm, req, key) }) {
		st.messages.ReleaseMessage(req)
	}
	return true
}

// work runs f, the serving of a request (costly: to a resource whose Cost
// is more than one), on a worker, unless MaxStateless requests are being
// served, or half of them costly and this one is: then the datagram is
// dropped, counted, and its sender retransmits.
func (s *Server) work(costly bool, f func()) bool {
	st := s.stateless
	if costly && st.inCostly.Add(1) > int64(st.max/2) {
		st.inCostly.Add(-1)
		s.dropped(DropCostlyBusy)
		return false
	}
	if st.inFlight.Add(1) > int64(st.max) {
		st.release(costly)
		s.dropped(DropStatelessBusy)
		return false
	}
	st.done.Add(1)
	st.workers.Go(func() {
		defer st.done.Done()
		defer st.release(costly)
		f()
	})
	return true
}

// release gives back the place of a request work counted.
func (st *stateless) release(costly bool) {
	st.inFlight.Add(-1)
	if costly {
		st.inCostly.Add(-1)
	}
}

// pathSegments splits a resource path ("/ledger/proof") into its Uri-Path
// segments.
func pathSegments(path string) []string { return strings.Split(strings.TrimPrefix(path, "/"), "/") }

// serves reports whether req is a request (CON or NON, a method code) to
// serve without an association: one to a Stateless resource, or to a path
// not in the table (a 4.04, which changes nothing). One with an unknown
// critical option is left to the request monitor, which rejects it
// (badOption).
func (st *stateless) serves(req *pool.Message) bool {
	if typ, code := req.Type(), req.Code(); (typ != message.Confirmable && typ != message.NonConfirmable) || code < codes.GET || code >= 32 || unknownCritical(req) {
		return false
	}
	return !anyPath(req.Options(), st.paths)
}

// anyPath reports whether the Uri-Path options of opts are one of paths.
func anyPath(opts message.Options, paths [][]string) bool {
	for _, p := range paths {
		if pathIs(opts, p) {
			return true
		}
	}
	return false
}

// pathIs reports whether the Uri-Path options of opts are segs, in order.
func pathIs(opts message.Options, segs []string) bool {
	i := 0
	for _, o := range opts {
		if o.ID != message.URIPath {
			continue
		}
		if i == len(segs) || string(o.Value) != segs[i] {
			return false
		}
		i++
	}
	return i == len(segs)
}

// serveStateless serves one request taken off the read loop, and releases
// it, and writes its answer: piggybacked on an ACK for a CON, as a NON for a
// NON (as the association path answers; never a CON, so never a
// retransmission). An answer a duplicate must draw again is kept under key.
func (s *Server) serveStateless(raddr *net.UDPAddr, cm *coapnet.ControlMessage, req *pool.Message, key uint64) {
	st := s.stateless
	defer st.messages.ReleaseMessage(req)
	w := &statelessWriter{ResponseWriter: responsewriter.New(st.messages.AcquireMessage(st.ctx), statelessPeer{raddr: raddr}, req.Options()...)}
	defer func() { st.messages.ReleaseMessage(w.Message()) }() // the answer as sent (SetMessage may replace it)
	s.guarded(w, &mux.Message{Message: req})
	resp := w.Message()
	switch {
	case resp.Code() != codes.Empty:
		resp.SetToken(req.Token())
	case req.Type() == message.NonConfirmable:
		return // No-Response (RFC 7967) asked for nothing
	}
	if req.Type() == message.Confirmable {
		resp.SetType(message.Acknowledgement)
		resp.SetMessageID(req.MessageID())
	} else {
		resp.SetType(message.NonConfirmable)
		resp.SetMessageID(int32(uint16(st.mid.Add(1))))
	}
	b, err := resp.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to answer without an association: %w", raddr, err))
		return
	}
	if w.keep {
		st.kept.put(key, b, s.cfg.now())
	}
	s.writeStateless(raddr, cm, b)
}

// writeStateless sends the answer b to raddr, from the address its request
// came to.
func (s *Server) writeStateless(raddr *net.UDPAddr, cm *coapnet.ControlMessage, b []byte) {
	st := s.stateless
	opts := []coapnet.UDPWriteOption{coapnet.WithContext(st.ctx), coapnet.WithRemoteAddr(raddr)}
	if cm := replyFrom(cm); cm != nil {
		opts = append(opts, coapnet.WithControlMessage(cm))
	}
	if err := st.conn.WriteWithOptions(b, opts...); err != nil {
		s.cfg.Errors(fmt.Errorf("%v: failed to answer without an association: %w", raddr, err))
	}
}

// statelessPeer is what the edge's stages see of a request without an
// association: its address, and no DTLS association (NetConn is nil).
// IMPORTANT: mux.Conn is embedded nil: the stages call only RemoteAddr and
// NetConn of a request's connection, and there is nothing else to call —
// no association to send on, observe or close.
type statelessPeer struct {
	mux.Conn
	raddr *net.UDPAddr
}

func (p statelessPeer) RemoteAddr() net.Addr         { return p.raddr }
func (p statelessPeer) NetConn() net.Conn            { return nil }
func (p statelessPeer) ReleaseMessage(*pool.Message) {}

// statelessWriter is go-coap's response writer (No-Response included) over
// a statelessPeer, as the mux.ResponseWriter the stages take; keep says
// whether a duplicate must draw the answer again (Server.answer sets it).
type statelessWriter struct {
	*responsewriter.ResponseWriter[statelessPeer]
	keep bool
}

func (w *statelessWriter) Conn() mux.Conn { return w.ResponseWriter.Conn() }
