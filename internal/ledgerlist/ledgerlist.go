// Package ledgerlist renders ledger blocks for operators, as 'iotguard
// ledger list' prints them: text (a line per block, an indented line per
// event, and under a session batch, when asked, a line per audit record) or
// JSON (one object per block, one block per line, for scripts).
// Both show IDs, times and reasons, and for an enroll the thumbprint of the
// key it admits and its terms; never keys, nonces or signed requests.
package ledgerlist

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// The formats Printer writes.
const (
	Text = "text"
	JSON = "json"
)

// ErrFormat is returned by Printer for a format other than Text and JSON.
var ErrFormat = errors.New("ledger list format is neither text nor json")

// event is an event as listed.
type event struct {
	Type      string `json:"type"`
	Device    string `json:"device"`
	Peer      string `json:"peer,omitempty"`
	Time      string `json:"time"`
	Expires   int64  `json:"expires,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Enroll events: the admitted key's RFC 9679 thumbprint, the enrolled
	// position and tolerance (fixed installations), whether it replaced
	// another key.
	Key       string      `json:"key_thumbprint,omitempty"`
	Position  *[2]float64 `json:"position,omitempty"`
	Tolerance uint64      `json:"tolerance_m,omitempty"`
	Replace   bool        `json:"replace,omitempty"`
	Batch     uint64      `json:"batch,omitempty"` // session-batch; grants-pruned: the first batch it keeps
	Count     uint64      `json:"count,omitempty"` // session-batch: its number of records
	Root      string      `json:"root,omitempty"`  // session-batch
	// Records are a session batch's audit records (session grants,
	// warnings) when the grant log was given; Pruned says it no longer
	// holds them.
	Records []event `json:"records,omitempty"`
	Pruned  bool    `json:"pruned,omitempty"`
}

// Records returns the audit records of session batch seq, as
// ledger.GrantLog.Events does.
type Records func(seq uint64) ([]ledger.Event, error)

// block is a block as listed; Events is [] (not null) for genesis.
type block struct {
	Height uint64  `json:"height"`
	Hash   string  `json:"hash"`
	Prev   string  `json:"prev"`
	Time   string  `json:"time"`
	Events []event `json:"events"`
}

// Printer returns a function that writes one block to w in format, for
// ledger.Ledger.Blocks and the like; with records (not nil) it also lists
// the audit records of each session batch. It checks format first, so that
// a caller can report ErrFormat before opening a ledger.
func Printer(w io.Writer, format string, records Records) (func(ledger.Block) error, error) {
	var write func(block) error
	switch format {
	case Text:
		write = func(b block) error { return writeText(w, b) }
	case JSON:
		enc := json.NewEncoder(w)
		write = func(b block) error { return enc.Encode(b) }
	default:
		return nil, ErrFormat
	}
	return func(b ledger.Block) error {
		lb, err := listed(b, records)
		if err != nil {
			return err
		}
		return write(lb)
	}, nil
}

func listed(b ledger.Block, records Records) (block, error) {
	h, err := b.Header.Hash()
	if err != nil {
		return block{}, err
	}
	lb := block{Height: b.Header.Height, Hash: hex.EncodeToString(h[:]), Prev: hex.EncodeToString(b.Header.Prev[:]),
		Time: msTime(b.Header.Time), Events: []event{}}
	for _, e := range b.Events {
		ev, err := listedEvent(e)
		if err != nil {
			return block{}, fmt.Errorf("block %d: %w", b.Header.Height, err)
		}
		if e.Type == ledger.EventSessionBatch && records != nil {
			if ev.Records, err = listedRecords(e, records); err != nil {
				return block{}, fmt.Errorf("block %d: %w", b.Header.Height, err)
			}
			ev.Pruned = len(ev.Records) == 0
		}
		lb.Events = append(lb.Events, ev)
	}
	return lb, nil
}

func listedEvent(e ledger.Event) (event, error) {
	ev := event{Type: e.Type.String(), Device: e.Device, Peer: e.Peer, Time: msTime(e.Time),
		Expires: e.Expires, SessionID: hex.EncodeToString(e.SessionID), Reason: e.Reason,
		Batch: e.Batch, Count: e.Count, Root: hex.EncodeToString(e.Root)}
	if e.Type == ledger.EventEnroll {
		pub, err := wire.ParsePublicKey(e.Key)
		if err != nil {
			return event{}, fmt.Errorf("enroll of %s: %w", e.Device, err)
		}
		th := wire.Thumbprint(pub)
		ev.Key, ev.Replace, ev.Tolerance = hex.EncodeToString(th[:]), e.Replace, e.Tolerance
		if e.Tolerance > 0 {
			ev.Position = &[2]float64{float64(e.Lat) / 1e6, float64(e.Lon) / 1e6}
		}
	}
	return ev, nil
}

// listedRecords lists the audit records of session batch e.
func listedRecords(e ledger.Event, records Records) ([]event, error) {
	recs, err := records(e.Batch)
	if err != nil {
		return nil, err
	}
	var out []event
	for i, r := range recs {
		ev, err := listedEvent(r)
		if err != nil {
			return nil, fmt.Errorf("batch %d, record %d: %w", e.Batch, i, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

func writeText(w io.Writer, b block) error {
	var s strings.Builder
	fmt.Fprintf(&s, "block %d %s %s\n", b.Height, b.Hash[:16], b.Time)
	for _, e := range b.Events {
		writeEvent(&s, "  ", e)
		if e.Pruned {
			s.WriteString("    (records pruned)\n")
		}
		for _, r := range e.Records {
			writeEvent(&s, "    ", r)
		}
	}
	_, err := io.WriteString(w, s.String())
	return err
}

func writeEvent(s *strings.Builder, indent string, e event) {
	fmt.Fprintf(s, "%s%-14s %s", indent, e.Type, Shown(e.Device))
	if e.Peer != "" {
		fmt.Fprintf(s, " peer=%s", Shown(e.Peer))
	}
	if e.Key != "" {
		fmt.Fprintf(s, " key=%s", e.Key[:16])
	}
	if e.Position != nil {
		fmt.Fprintf(s, " position=%.6f,%.6f±%dm", e.Position[0], e.Position[1], e.Tolerance)
	}
	if e.Replace {
		s.WriteString(" replace")
	}
	if e.Reason != "" {
		fmt.Fprintf(s, " reason=%q", e.Reason)
	}
	switch {
	case e.Type == ledger.EventGrantsPruned.String():
		fmt.Fprintf(s, " below-batch=%d", e.Batch)
	case e.Batch != 0:
		fmt.Fprintf(s, " batch=%d records=%d root=%.16s", e.Batch, e.Count, e.Root)
	}
	s.WriteByte('\n')
}

// Shown returns id, a device ID read from a ledger or a grant log, as text
// for a terminal: itself if it is a plain ID ([A-Za-z0-9._-], wire.CheckID),
// else quoted as %q does, its control characters escaped. The ledger takes
// any UTF-8 as the device and peer of a warning, so a CH could write a
// terminal's escape sequence there: it is shown, not obeyed.
func Shown(id string) string {
	if wire.CheckID(id) == nil {
		return id
	}
	return strconv.Quote(id)
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
