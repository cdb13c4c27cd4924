package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/internal/counting"
	"github.com/iotguard/iotguard/ledger"
)

// Enroller enrolls and unenrolls devices and lists the enrollments of a
// running CH; clusterhead implements it (in its Operator) over the cluster
// core and the ledger.
type Enroller interface {
	Enroll(ctx context.Context, r cluster.Enrollment) (height uint64, err error)
	Unenroll(ctx context.Context, id, reason string) (height uint64, err error)
	Enrollments(fn func(ledger.Enrollment) error) error
}

// maxEnrollRequest bounds an enroll request's body.
const maxEnrollRequest = 16 << 10

// handleEnroll adds the enrollment API to mux:
//
//	POST /enroll     JSON cluster.Enrollment → {"id", "height"}
//	POST /unenroll   form id, reason         → {"id", "height"}
//	GET  /enrollments                        → one JSON ledger.Enrollment a line
//
// A refusal is 409 with the error's text (refusal.go).
func handleEnroll(mux *http.ServeMux, e Enroller) {
	mux.HandleFunc("POST /enroll", func(w http.ResponseWriter, req *http.Request) {
		var r cluster.Enrollment
		dec := json.NewDecoder(io.LimitReader(req.Body, maxEnrollRequest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			http.Error(w, "malformed enroll request: "+err.Error(), http.StatusBadRequest)
			return
		}
		h, err := e.Enroll(req.Context(), r)
		if err != nil {
			refuse(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": r.ID, "height": h})
	})
	mux.HandleFunc("POST /unenroll", func(w http.ResponseWriter, req *http.Request) {
		id, reason := req.FormValue("id"), req.FormValue("reason")
		h, err := e.Unenroll(req.Context(), id, reason)
		if err != nil {
			refuse(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "height": h})
	})
	// Streamed as the index is walked: a fleet's list (a million devices,
	// ~500 MB of JSON) is never held whole in the serving CH, nor bounded by
	// the size of one answer.
	mux.HandleFunc("GET /enrollments", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		cw := &counting.Writer{W: w}
		enc := json.NewEncoder(cw)
		if err := e.Enrollments(func(en ledger.Enrollment) error { return enc.Encode(en) }); err != nil {
			if cw.N == 0 {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			// Cut the response so that the client reads an error, never a
			// short list that looks whole.
			panic(http.ErrAbortHandler)
		}
	})
}

// Enroll asks the CH running on data directory dir to enroll r; it returns
// the height of the block holding the enroll event. Without a running
// server the error wraps ErrNotRunning.
func Enroll(ctx context.Context, dir string, r cluster.Enrollment) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("failed to encode enroll request: %w", err)
	}
	var out struct{ Height uint64 }
	err = call(ctx, dir, http.MethodPost, "/enroll", "application/json", bytes.NewReader(b), &out)
	return out.Height, err
}

// Unenroll asks the CH running on data directory dir to remove id's
// enrollment.
func Unenroll(ctx context.Context, dir, id, reason string) (uint64, error) {
	form := url.Values{"id": {id}, "reason": {reason}}
	var out struct{ Height uint64 }
	err := call(ctx, dir, http.MethodPost, "/unenroll", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &out)
	return out.Height, err
}

// Enrollments asks the CH running on data directory dir for every
// enrollment, in ID order. A list the server could not finish is an error.
func Enrollments(ctx context.Context, dir string) ([]ledger.Enrollment, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://iotguard/enrollments", nil)
	if err != nil {
		return nil, err
	}
	resp, err := do(dir, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := []ledger.Enrollment{}
	dec := json.NewDecoder(resp.Body) // no bound on the whole: it grows with the fleet
	for {
		var e ledger.Enrollment
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read enrollment %d of the list: %w", len(out)+1, err)
		}
		out = append(out, e)
	}
}

// maxAnswer bounds what a client reads of an answer of one JSON value (the
// enrollment list, which grows with the fleet, is streamed instead).
const maxAnswer = 16 << 20

// call sends one request to the control socket of dir (do) and decodes the
// 200 answer's JSON into out.
func call(ctx context.Context, dir, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://iotguard"+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := do(dir, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("failed to read the answer to %s: %w", path, err)
	}
	return nil
}
