package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/iotguard/iotguard/ledger"
)

// Pruner deletes old audit records from a running CH's grant log;
// clusterhead implements it (in its Operator).
type Pruner interface {
	// PruneGrants deletes the records of committed batches written more
	// than olderThan ago (ledger.GrantLog.Prune), calling progress after
	// each of its transactions.
	PruneGrants(ctx context.Context, olderThan time.Duration, progress func(done, total uint64)) (ledger.Pruned, error)
}

// pruneLine is one line of the answer to POST /prune-grants, which streams
// one JSON object a line: progress while the prune runs, then its outcome or
// the error that stopped it (the status, 200, was sent with the first line).
type pruneLine struct {
	Done   uint64         `json:"done,omitempty"`
	Total  uint64         `json:"total,omitempty"`
	Pruned *ledger.Pruned `json:"pruned,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// handlePrune adds POST /prune-grants?older-than=D to mux. A client that
// goes away stops the prune after its current transaction.
func handlePrune(mux *http.ServeMux, op Pruner) {
	mux.HandleFunc("POST /prune-grants", func(w http.ResponseWriter, req *http.Request) {
		age, err := time.ParseDuration(req.FormValue("older-than"))
		if err != nil || age <= 0 {
			http.Error(w, fmt.Sprintf("older-than %q: want a positive duration", req.FormValue("older-than")), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc, rc := json.NewEncoder(w), http.NewResponseController(w)
		send := func(l pruneLine) {
			_ = enc.Encode(l)
			_ = rc.Flush()
		}
		send(pruneLine{}) // the status now: the prune may take a while
		p, err := op.PruneGrants(req.Context(), age, func(done, total uint64) { send(pruneLine{Done: done, Total: total}) })
		if err != nil {
			send(pruneLine{Error: err.Error()})
			return
		}
		send(pruneLine{Pruned: &p})
	})
}

// PruneGrants asks the CH running on data directory dir to prune the grant
// records of batches written more than olderThan ago (by its clock), and
// calls progress as its answer reports it.
func PruneGrants(ctx context.Context, dir string, olderThan time.Duration, progress func(done, total uint64)) (ledger.Pruned, error) {
	form := url.Values{"older-than": {olderThan.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://iotguard/prune-grants?"+form.Encode(), nil)
	if err != nil {
		return ledger.Pruned{}, err
	}
	resp, err := do(dir, req)
	if err != nil {
		return ledger.Pruned{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var l pruneLine
		switch err := dec.Decode(&l); {
		case errors.Is(err, io.EOF):
			return ledger.Pruned{}, errors.New("the server's prune answer ended without an outcome")
		case err != nil:
			return ledger.Pruned{}, fmt.Errorf("failed to read prune answer: %w", err)
		case l.Error != "":
			return ledger.Pruned{}, errors.New(l.Error)
		case l.Pruned != nil:
			return *l.Pruned, nil
		case l.Total > 0 && progress != nil:
			progress(l.Done, l.Total)
		}
	}
}
