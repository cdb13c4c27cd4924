package coapsrv

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/wire"
)

// proof serves GET /ledger/proof?id=ID or ?height=N, with &from=M
// (docs/PROTOCOL.md §9.2).
func (s *Server) proof(ctx context.Context, r *coapedge.Request) coapedge.Response {
	q, err := parseQuery(r.Query, "id", "height", "from")
	var req cluster.ProofRequest
	if err == nil {
		req.ID = q["id"]
		switch _, byHeight := q["height"]; {
		case req.ID != "" && byHeight, req.ID == "" && !byHeight:
			err = malformed("name the block with id=ID or height=N")
		case req.ID != "":
			if err = wire.CheckID(req.ID); err != nil {
				err = malformed(fmt.Sprintf("id: %v", err))
			}
		default:
			req.Height, err = number(q, "height", 0)
		}
	}
	if err == nil {
		req.From, err = number(q, "from", 1)
	}
	if err != nil {
		resp, _ := s.fail(r, err)
		return resp
	}
	return s.cbor(r, func() ([]byte, error) { return s.core.Proof(ctx, req) })
}

// consistency serves GET /ledger/consistency?from=M (§9.3).
func (s *Server) consistency(ctx context.Context, r *coapedge.Request) coapedge.Response {
	q, err := parseQuery(r.Query, "from")
	var from uint64
	if err == nil {
		if _, ok := q["from"]; !ok {
			err = malformed("from=N is required")
		} else {
			from, err = number(q, "from", 1)
		}
	}
	if err != nil {
		resp, _ := s.fail(r, err)
		return resp
	}
	return s.cbor(r, func() ([]byte, error) { return s.core.Consistency(ctx, from) })
}

// malformed is a 4.00 whose diagnostic says what is wrong with the query.
func malformed(detail string) error {
	return &cluster.Refusal{Reason: cluster.ErrMalformed, Detail: detail}
}

// cbor answers 2.05 with the CBOR answer make returns, or the rejection.
func (s *Server) cbor(r *coapedge.Request, make func() ([]byte, error)) coapedge.Response {
	b, err := make()
	if err != nil {
		resp, _ := s.fail(r, err)
		return resp
	}
	return coapedge.Response{Code: codes.Content, Format: message.AppCBOR, Body: b}
}

// parseQuery reads Uri-Query options of the form key=value, each key at most
// once and one of keys.
func parseQuery(query []string, keys ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range query {
		k, v, ok := strings.Cut(kv, "=")
		known := false
		for _, want := range keys {
			known = known || k == want
		}
		if _, dup := out[k]; !ok || !known || dup {
			return nil, malformed(fmt.Sprintf("query %q (want %s=…, each once)", kv, strings.Join(keys, "=…, ")))
		}
		out[k] = v
	}
	return out, nil
}

// number returns query key as a decimal number of at least min, or 0 when
// it is absent.
func number(q map[string]string, key string, min uint64) (uint64, error) {
	v, ok := q[key]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < min || (len(v) > 1 && v[0] == '0') {
		return 0, malformed(fmt.Sprintf("%s=%q is not a number ≥ %d", key, v, min))
	}
	return n, nil
}
