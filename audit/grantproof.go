package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/iotguard/iotguard/internal/ledgerlist"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// GrantClaim is one session grant with its inclusion proof, as 'iotguard
// ledger grant-proof' prints it (JSON, byte strings in hex): what the holder
// of a grant keeps before the CH prunes its record, and checks later against
// the signed chain of an export (ExportReport.CheckGrant), pruned or not.
type GrantClaim struct {
	Cluster string   `json:"cluster"`
	Block   uint64   `json:"block"` // height of the block holding the batch's session-batch event
	Batch   uint64   `json:"batch"`
	Count   uint64   `json:"count"`
	Root    string   `json:"root"`
	Index   uint64   `json:"index"` // the grant's place in its batch
	Record  string   `json:"record"`
	Path    []string `json:"path"` // RFC 9162 inclusion path from the record to Root
}

// NewGrantClaim returns p, a proof from cluster's grant log, as a claim.
func NewGrantClaim(cluster string, p ledger.GrantProof) GrantClaim {
	path := make([]string, len(p.Path))
	for i, h := range p.Path {
		path[i] = hex.EncodeToString(h)
	}
	return GrantClaim{Cluster: cluster, Block: p.Height, Batch: p.Event.Batch, Count: p.Event.Count,
		Root: hex.EncodeToString(p.Event.Root), Index: p.Index, Record: hex.EncodeToString(p.Record), Path: path}
}

// ErrGrantClaim is returned by CheckGrant for a claim the chain does not
// bear out.
var ErrGrantClaim = errors.New("grant not proven")

// CheckGrant checks c against r's chain, which VerifyExport checked: the
// batch c names is a session-batch event of the cluster in block c.Block with
// c's count and root; c's record is grant c.Index of it by c's path; and the
// record is valid under the chain's rule at that block
// (ledger.CheckGrantRecord, ledger.GrantRule; a batch on the chain more than
// once may be named by any copy, and is checked at its first). It returns
// the grant. The export need not carry the batch's records: a claim kept
// before a prune still proves its grant.
func (r *ExportReport) CheckGrant(c GrantClaim) (ledger.Event, error) {
	var grant ledger.Event
	if c.Cluster != r.Cluster {
		return grant, fmt.Errorf("%w: the claim is of cluster %q, the export of %q", ErrGrantClaim, c.Cluster, r.Cluster)
	}
	refs := r.replay.SessionBatches()
	batches, err := ledger.IndexBatches(refs)
	if err != nil {
		return grant, fmt.Errorf("%w: %w", ErrGrantClaim, err)
	}
	ref, ok := batches[c.Batch] // its first copy, whose block its grants are checked at
	if ok && c.Block != ref.Height && slices.ContainsFunc(refs, func(x ledger.SessionBatchRef) bool {
		return x.Event.Batch == c.Batch && x.Height == c.Block
	}) {
		c.Block = ref.Height // the claim names a later copy of the same batch (ledger.IndexBatches)
	}
	switch {
	case !ok:
		return grant, fmt.Errorf("%w: batch %d is not on the exported chain", ErrGrantClaim, c.Batch)
	case ref.Height != c.Block || ref.Event.Count != c.Count || hex.EncodeToString(ref.Event.Root) != c.Root:
		return grant, fmt.Errorf("%w: the claim puts batch %d in block %d with %d grants and root %q; the chain has it in block %d with %d and %x",
			ErrGrantClaim, c.Batch, c.Block, c.Count, c.Root, ref.Height, ref.Event.Count, ref.Event.Root)
	}
	record, err := hex.DecodeString(c.Record)
	if err != nil {
		return grant, fmt.Errorf("%w: record: %v", ErrGrantClaim, err)
	}
	path := make([][]byte, len(c.Path))
	for i, h := range c.Path {
		if path[i], err = hex.DecodeString(h); err != nil {
			return grant, fmt.Errorf("%w: path: %v", ErrGrantClaim, err)
		}
	}
	if err := ledger.VerifyGrantInclusion(ref.Event, record, c.Index, path); err != nil {
		return grant, fmt.Errorf("%w: %w", ErrGrantClaim, err)
	}
	if err := ledger.CheckGrantRecord(record, r.replay.GrantRule(ref.Height, ref.Event.Time)); err != nil {
		return grant, fmt.Errorf("%w: %w", ErrGrantClaim, err)
	}
	err = wire.Unmarshal(record, &grant) // CheckGrantRecord decoded it
	return grant, err
}

// Describe returns a record CheckGrant proved as one line for a terminal:
// the session of a grant, or the warning. A warning's subject and reason
// may be any UTF-8 (only its asker must have joined): IDs that are not
// plain and the reason are quoted (ledgerlist.Shown), so that a terminal's
// escape sequence in them is shown, not obeyed.
func Describe(rec ledger.Event) string {
	dev, peer := ledgerlist.Shown(rec.Device), ledgerlist.Shown(rec.Peer)
	if rec.Type == ledger.EventVerifyWarning {
		return fmt.Sprintf("warning to %s about %s (%q)", dev, peer, rec.Reason)
	}
	return fmt.Sprintf("session %x of %s with %s", rec.SessionID, dev, peer)
}
