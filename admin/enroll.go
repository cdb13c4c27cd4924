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
//	GET  /enrollments                        → JSON array of ledger.Enrollment
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
	mux.HandleFunc("GET /enrollments", func(w http.ResponseWriter, _ *http.Request) {
		list := []ledger.Enrollment{}
		if err := e.Enrollments(func(en ledger.Enrollment) error { list = append(list, en); return nil }); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(list)
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
// enrollment, in ID order.
func Enrollments(ctx context.Context, dir string) ([]ledger.Enrollment, error) {
	var out []ledger.Enrollment
	if err := call(ctx, dir, http.MethodGet, "/enrollments", "", nil, &out); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errors.New("failed to read enrollments: null answer")
	}
	return out, nil
}

// maxAnswer bounds what a client reads of an answer (an enrollment list of
// some ten thousand devices).
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
