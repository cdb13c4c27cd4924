package audit

import (
	"bufio"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// CH is what Export needs of the cluster head's key: checkpoint signatures
// and every CH public key as a COSE_Key, oldest first, the key in force
// last; *keysvc.Service implements it.
type CH interface {
	transparency.Signer
	Keys() [][]byte
}

// Blocks is what Export reads: every block from genesis (a ledger.Ledger).
type Blocks interface {
	Head() (ledger.BlockRef, int64, error)
	Blocks(from uint64, fn func(ledger.Block) error) error
}

// Grants is what Export reads of the CH's grant log (a *ledger.GrantLog).
type Grants interface {
	Batches(fn func(ledger.GrantBatch) error) error
	Records(seq uint64) ([][]byte, error)
}

// Export writes the ledger l of cluster to w (docs/PROTOCOL.md §9.5): a
// header naming the cluster and the CH key (with the keys before it, if it
// was rotated), every block from genesis to the head as it is now, a
// checkpoint over exactly those blocks, signed by ch, and the records of
// every grant batch of g committed in those blocks and not pruned (a nil g
// exports none). The tree is computed from the blocks written, not read from
// the store. progress, if not nil, hears the blocks written and the total.
func Export(w io.Writer, l Blocks, g Grants, cluster string, ch CH, progress func(done, total uint64)) (*transparency.Checkpoint, error) {
	head, _, err := l.Head()
	if err != nil {
		return nil, fmt.Errorf("failed to export: %w", err)
	}
	total := head.Height + 1
	batches, err := exportedBatches(g, head.Height)
	if err != nil {
		return nil, fmt.Errorf("failed to export: %w", err)
	}
	bw := bufio.NewWriter(w)
	keys := ch.Keys()
	hdr := &wire.ExportHeader{Format: wire.ExportFormat, Version: wire.ExportVersion, Cluster: cluster, Key: keys[len(keys)-1],
		Blocks: total, Grants: uint64(len(batches))}
	for _, k := range keys[:len(keys)-1] {
		hdr.Earlier = append(hdr.Earlier, k)
	}
	if len(hdr.Earlier) == 0 {
		hdr.Version = 2 // nothing of version 3 in it: verifiers of version 2 read it too
	}
	if err := writeItem(bw, hdr); err != nil {
		return nil, err
	}
	rng := transparency.Ranges.NewEmptyRange(0)
	var last int64
	// The session-batch events by batch number and block: a batch may be on
	// a shared ledger more than once (ledger.IndexBatches); its records go
	// with the copy in the block its grant log names.
	onChain := map[[2]uint64]ledger.SessionBatchRef{}
	errDone := errors.New("done")
	err = l.Blocks(0, func(b ledger.Block) error {
		raw, err := ledger.EncodeBlock(b)
		if err != nil {
			return err
		}
		if err := writeItem(bw, raw); err != nil {
			return err
		}
		hash, err := b.Header.Hash()
		if err != nil {
			return err
		}
		leaf := transparency.LeafHash(hash)
		if err := rng.Append(leaf[:], nil); err != nil {
			return err
		}
		last = b.Header.Time
		for _, ev := range b.Events {
			if ev.Type == ledger.EventSessionBatch && ev.Device == cluster {
				onChain[[2]uint64{ev.Batch, b.Header.Height}] = ledger.SessionBatchRef{Event: ev, Height: b.Header.Height}
			}
		}
		if progress != nil && (rng.End()%1024 == 0 || rng.End() == total) {
			progress(rng.End(), total)
		}
		if rng.End() == total {
			return errDone // blocks committed after the head we named are not exported
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, fmt.Errorf("failed to export block %d: %w", rng.End(), err)
	}
	if rng.End() != total {
		return nil, fmt.Errorf("failed to export: the ledger has %d blocks, its head says %d", rng.End(), total)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	signed, err := transparency.SignCheckpoint(ch, cluster, total, [32]byte(root), last)
	if err != nil {
		return nil, err
	}
	if err := writeItem(bw, signed); err != nil {
		return nil, err
	}
	for _, b := range batches {
		if err := exportBatch(bw, g, b, onChain[[2]uint64{b.Seq, b.Height}]); err != nil {
			return nil, fmt.Errorf("failed to export grant batch %d: %w", b.Seq, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("failed to write export: %w", err)
	}
	return &transparency.Checkpoint{Cluster: cluster, Size: total, Root: [32]byte(root), TimeMS: uint64(last), Signed: signed}, nil
}

// exportedBatches returns the batches of g whose records an export with head
// height head carries: committed at or below head, not pruned. A nil g has
// none.
func exportedBatches(g Grants, head uint64) ([]ledger.GrantBatch, error) {
	var out []ledger.GrantBatch
	if g == nil {
		return nil, nil
	}
	err := g.Batches(func(b ledger.GrantBatch) error {
		if b.Height != 0 && b.Height <= head && !b.Pruned {
			out = append(out, b)
		}
		return nil
	})
	return out, err
}

// exportBatch writes batch b of g, whose event on the exported chain is ref
// (zero if none): its ExportGrants item, then its records. The grant log
// must agree with the chain and still hold every record (a prune since
// exportedBatches read the batch list is an error; export again).
func exportBatch(w io.Writer, g Grants, b ledger.GrantBatch, ref ledger.SessionBatchRef) error {
	ev := ref.Event
	if ref.Height != b.Height || ev.Count != b.Count || string(ev.Root) != string(b.Root[:]) {
		return fmt.Errorf("the grant log says %d grants with root %x in block %d, the exported chain does not (hint: iotguard ledger verify)", b.Count, b.Root, b.Height)
	}
	recs, err := g.Records(b.Seq)
	if err != nil {
		return err
	}
	if uint64(len(recs)) != b.Count {
		return fmt.Errorf("%d records of %d in the grant log (pruned during the export? export again)", len(recs), b.Count)
	}
	if err := writeItem(w, &wire.ExportGrants{Batch: b.Seq, Count: b.Count}); err != nil {
		return err
	}
	for _, rec := range recs {
		if err := writeItem(w, rec); err != nil {
			return err
		}
	}
	return nil
}

// writeItem writes v as the next item of an export.
func writeItem(w io.Writer, v any) error {
	item, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(item); err != nil {
		return fmt.Errorf("failed to write export: %w", err)
	}
	return nil
}

// ExportReport is what VerifyExport found in an intact export.
type ExportReport struct {
	Cluster    string
	Key        *ecdsa.PublicKey
	Devices    int // device IDs the chain binds
	Checkpoint *transparency.Checkpoint
	Grants     GrantReport

	replay *ledger.Replay // the checked chain, for CheckGrant
}

// GrantReport counts the audit records (session grants, warnings) of an
// export's chain.
type GrantReport struct {
	// Batches and Grants were checked: their records are in the export,
	// hash to their session-batch event's root and are valid grants.
	Batches, Grants uint64
	// PrunedBatches and PrunedGrants are on the chain, counted and rooted,
	// without records in the export, and a grants-pruned event of the chain
	// covers them (ledger.GrantsPrunedEvent): the CH pruned them, and said
	// so on the ledger. A batch without records that no prune covers makes
	// the export not intact.
	PrunedBatches, PrunedGrants uint64
}

// ErrExport is returned by VerifyExport for an export that is not intact:
// unreadable, of keys none of which is the pinned one, whose rotations do
// not reach the key in force, with a checkpoint that does not state its
// blocks. A bad block is a *ledger.BadBlockError, a bad grant batch wraps
// ledger.ErrBadGrant as well.
var ErrExport = errors.New("export is not intact")

// VerifyExport checks an export offline: one of its keys — the key in
// force, or one before a rotation (the first, which signed genesis, or one
// between) — must have the thumbprint pin; every block must pass the
// ledger's own checks (ledger.Replay: chain, signatures under the key in
// force at its height, each rotation signed by the key before it and naming
// the header's next key, state machine, join evidence) and the rotations
// must reach the key in force, as `ledger verify` follows a data
// directory's keys; so each key vouches for every other through signed
// rotations. The checkpoint must be signed by the key in force and state
// exactly the tree of those blocks and the time of the newest;
// every grant batch must be one of the chain's session-batch events, in
// increasing batch number, its records valid for that event
// (ledger.CheckGrantBatch) under the chain's rule (ledger.GrantRule: its
// devices joined in a block before the event's and were members at the
// record's time). progress, if not nil, hears the blocks checked and the total.
func VerifyExport(r io.Reader, pin [32]byte, progress func(done, total uint64)) (*ExportReport, error) {
	return VerifyExportSince(r, pin, nil, progress)
}

// VerifyExportSince is VerifyExport that also holds the export to kept, a
// signed checkpoint the auditor verified before (the last one of a watch
// State), if not nil: kept must be signed by one of the export's keys, of
// its cluster, and state the tree of the export's first kept.Size blocks
// and the time of the last of them. An export is checked on its own
// otherwise: a CH that rebuilt its history and re-signed it exports a chain
// that verifies, and only a checkpoint of the log as it was shown before
// tells them apart. An export that is not an extension of kept (smaller, or
// another root or time at kept's size) is a *transparency.ForkError carrying
// both checkpoints.
func VerifyExportSince(r io.Reader, pin [32]byte, kept []byte, progress func(done, total uint64)) (*ExportReport, error) {
	dec := wire.NewSequenceDecoder(bufio.NewReader(r))
	var hdr wire.ExportHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrExport, err)
	}
	if err := hdr.Validate(); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrExport, err)
	}
	keys := make([][]byte, 0, len(hdr.Earlier)+1)
	for _, k := range hdr.Earlier {
		keys = append(keys, k)
	}
	keys = append(keys, hdr.Key)
	chain, err := keysvc.NewChain(keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExport, err)
	}
	key, err := wire.ParsePublicKey(hdr.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: CH key: %w", ErrExport, err)
	}
	if err := pinned(keys, pin); err != nil {
		return nil, err
	}
	var keptCP *transparency.Checkpoint
	var keptRoot []byte // the export's root at keptCP's size
	var keptTime int64  // and the time of its newest block
	if kept != nil {
		if keptCP, err = openKept(kept, keys, hdr.Cluster); err != nil {
			return nil, err
		}
	}
	replay := ledger.NewReplay(hdr.Cluster, chain)
	rng := transparency.Ranges.NewEmptyRange(0)
	for i := uint64(0); i < hdr.Blocks; i++ {
		var raw []byte
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: block %d of %d: %w", ErrExport, i, hdr.Blocks, err)
		}
		ref, err := replay.Next(raw)
		if err != nil {
			return nil, err
		}
		leaf := transparency.LeafHash(ref.Hash)
		if err := rng.Append(leaf[:], nil); err != nil {
			return nil, err
		}
		if keptCP != nil && rng.End() == keptCP.Size {
			if keptRoot, err = rng.GetRootHash(nil); err != nil {
				return nil, err
			}
			keptTime = replay.Time()
		}
		if progress != nil && (i%1024 == 1023 || i+1 == hdr.Blocks) {
			progress(i+1, hdr.Blocks)
		}
	}
	if err := replay.End(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExport, err)
	}
	var signed []byte
	if err := dec.Decode(&signed); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrExport, err)
	}
	cp, err := transparency.OpenCheckpoint(signed, key, hdr.Cluster)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExport, err)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if cp.Size != hdr.Blocks || cp.Root != [32]byte(root) {
		return nil, fmt.Errorf("%w: the checkpoint states tree size %d root %x, the blocks give %d %x", ErrExport, cp.Size, cp.Root, hdr.Blocks, root)
	}
	if cp.TimeMS != uint64(replay.Time()) {
		return nil, fmt.Errorf("%w: the checkpoint states time %d ms, its newest block has %d", ErrExport, cp.TimeMS, replay.Time())
	}
	switch {
	case keptCP == nil:
	case keptCP.Size > cp.Size:
		return nil, &transparency.ForkError{Old: keptCP, New: cp, Reason: "the export holds fewer blocks than the checkpoint kept"}
	case string(keptRoot) != string(keptCP.Root[:]):
		return nil, &transparency.ForkError{Old: keptCP, New: cp,
			Reason: fmt.Sprintf("the export's first %d blocks have root %x", keptCP.Size, keptRoot)}
	case keptCP.TimeMS != uint64(keptTime):
		return nil, &transparency.ForkError{Old: keptCP, New: cp,
			Reason: fmt.Sprintf("the kept checkpoint states time %d ms, block %d of the export has %d", keptCP.TimeMS, keptCP.Size-1, keptTime)}
	}
	grants, err := verifyGrants(dec, hdr.Grants, replay)
	if err != nil {
		return nil, err
	}
	var extra cbor.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the last grant batch", ErrExport)
	}
	return &ExportReport{Cluster: hdr.Cluster, Key: key, Devices: replay.Devices(), Checkpoint: cp, Grants: grants, replay: replay}, nil
}

// openKept opens kept, a signed checkpoint, under the one of keys (COSE_Keys
// that parse) that signed it, and checks that it is of cluster.
func openKept(kept []byte, keys [][]byte, cluster string) (*transparency.Checkpoint, error) {
	for _, k := range keys {
		pub, _ := wire.ParsePublicKey(k)
		cp, err := transparency.OpenCheckpoint(kept, pub, cluster)
		if errors.Is(err, transparency.ErrWrongKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the checkpoint kept: %w", ErrExport, err)
		}
		return cp, nil
	}
	return nil, fmt.Errorf("%w: the checkpoint kept is signed by none of the export's keys", ErrExport)
}

// pinned checks that one of keys (COSE_Keys, the key in force last) has the
// thumbprint pin (ledger.Pinned).
func pinned(keys [][]byte, pin [32]byte) error {
	if err := ledger.Pinned(keys, pin); err != nil {
		return fmt.Errorf("%w: %w", ErrExport, err)
	}
	return nil
}

// verifyGrants reads and checks the n grant batches of an export against the
// session-batch events of its replayed chain, and counts the chain's batches
// it carries no records of, each of which a prune on the chain must cover.
func verifyGrants(dec *wire.SequenceDecoder, n uint64, replay *ledger.Replay) (GrantReport, error) {
	var rep GrantReport
	onChain, err := ledger.IndexBatches(replay.SessionBatches())
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrExport, err)
	}
	var prev uint64
	for i := uint64(0); i < n; i++ {
		var item wire.ExportGrants
		if err := dec.Decode(&item); err != nil {
			return rep, fmt.Errorf("%w: grant batch item %d of %d (after batch %d): %w", ErrExport, i, n, prev, err)
		}
		if err := item.Validate(); err != nil {
			return rep, fmt.Errorf("%w: grant batch item %d of %d (after batch %d): %w", ErrExport, i, n, prev, err)
		}
		if item.Batch <= prev {
			return rep, fmt.Errorf("%w: grant batch %d after batch %d", ErrExport, item.Batch, prev)
		}
		prev = item.Batch
		ref, ok := onChain[item.Batch]
		if !ok {
			return rep, fmt.Errorf("%w: %w: batch %d is not on the exported chain", ErrExport, ledger.ErrBadGrant, item.Batch)
		}
		if err := verifyBatch(dec, item, ref, replay); err != nil {
			return rep, err
		}
		delete(onChain, item.Batch)
		rep.Batches++
		rep.Grants += ref.Event.Count
	}
	for _, seq := range slices.Sorted(maps.Keys(onChain)) {
		ref := onChain[seq]
		if _, ok := replay.PrunedBy(seq, ref.Height); !ok {
			return rep, fmt.Errorf("%w: %w: batch %d (%d grants, block %d) has no records in the export and no grants-pruned event of the chain covers it: withheld, or not marked committed in the grant log when exported (start the CH once, then export again)",
				ErrExport, ledger.ErrBadGrant, seq, ref.Event.Count, ref.Height)
		}
		rep.PrunedBatches++
		rep.PrunedGrants += ref.Event.Count
	}
	return rep, nil
}

// verifyBatch reads the records of one grant batch item and checks them
// against ref, its event on the chain: exactly the event's count, hashing to
// its root, each valid under the chain's rule at ref (ledger.GrantRule).
func verifyBatch(dec *wire.SequenceDecoder, item wire.ExportGrants, ref ledger.SessionBatchRef, replay *ledger.Replay) error {
	if item.Count != ref.Event.Count {
		return fmt.Errorf("%w: %w: batch %d: %d records, the ledger says %d", ErrExport, ledger.ErrBadGrant, item.Batch, item.Count, ref.Event.Count)
	}
	recs := make([][]byte, item.Count) // at most ledger.MaxGrantBatch: the event was validated
	for i := range recs {
		if err := dec.Decode(&recs[i]); err != nil {
			return fmt.Errorf("%w: batch %d: record %d of %d: %w", ErrExport, item.Batch, i, item.Count, err)
		}
	}
	if err := ledger.CheckGrantBatch(ref.Event, recs, replay.GrantRule(ref.Height, ref.Event.Time)); err != nil {
		return fmt.Errorf("%w: %w", ErrExport, err)
	}
	return nil
}
