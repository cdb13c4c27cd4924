package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/iotguard/iotguard/audit"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/bench"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/transparency"
)

const auditUsage = `Usage: iotguard audit <proof|consistency|watch|verify-export> [flags]

Checks a cluster head's transparency log (docs/PROTOCOL.md §9) from outside:
every answer is verified before it is printed, against the CH key (--pin, or
the key GET /cluster gives), and a failure exits 1.

  proof          the inclusion proof of a device's latest join (or a block)
  consistency    the proof that the log of --from blocks is a prefix of today's
  watch          fetch the checkpoint now and then, prove it consistent with the
                 last one kept in --state; a fork exits 1 printing both checkpoints;
                 a CH key rotation signed by the kept key is followed, another key
                 exits 1
  verify-export  check a 'ledger export' file offline: every block, signature
                 and event, the signed checkpoint over them, and every session
                 grant record against its batch's root on the chain; with
                 --grant-proof, a grant 'ledger grant-proof' printed (its
                 inclusion path to that root), even once its record is pruned;
                 with --state, the export must extend the checkpoint a watch kept

Examples:
  iotguard audit proof --server coap://127.0.0.1:5683 --device sensor-a --json
  iotguard audit consistency --server coap://127.0.0.1:5683 --from 12
  iotguard audit watch --server coap://127.0.0.1:5683 --state ch.watch --interval 1m
  iotguard audit verify-export ledger.export --pin THUMBPRINT   # 64 hex digits: ch_key_thumbprint in the server log
  iotguard audit verify-export --pin THUMBPRINT --grant-proof grant.json ledger.export   # a grant kept before a prune
`

func auditCmd(args []string) error {
	return dispatch("audit", auditUsage, args, map[string]func([]string) error{
		"proof": auditProof, "consistency": auditConsistency, "watch": auditWatch, "verify-export": auditVerifyExport,
	})
}

// auditFlags are the flags of the subcommands that ask a CH.
type auditFlags struct {
	fs      *flag.FlagSet
	server  *string
	pin     *string
	json    *bool
	timeout *time.Duration
}

func newAuditFlags(name string) auditFlags {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	return auditFlags{
		fs:      fs,
		server:  fs.String("server", "coap://127.0.0.1:5683", "cluster head `URL`"),
		pin:     fs.String("pin", "", "CH key thumbprint (`hex`) the checkpoints must be signed by, or that signed rotations lead from to their key"),
		json:    fs.Bool("json", false, "print JSON (hashes in hex)"),
		timeout: fs.Duration("timeout", 30*time.Second, "give up after this long"),
	}
}

// open parses args and dials the CH's public resources, with the pin.
func (f auditFlags) open(args []string, need ...string) (*device.Public, context.Context, func(), error) {
	if err := Parse(f.fs, auditUsage, args); err != nil {
		return nil, nil, nil, err
	}
	if err := Required(f.fs, need...); err != nil {
		return nil, nil, nil, err
	}
	pin, err := parsePin(*f.pin)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := device.DialPublic(*f.server, pin)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *f.timeout)
	return p, ctx, func() { cancel(); p.Close() }, nil
}

func parsePin(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	pin, err := hex.DecodeString(s)
	if err != nil || len(pin) != 32 {
		return nil, usageError{msg: "--pin must be 64 hex digits (the CH key thumbprint: server log, GET /cluster)"}
	}
	return pin, nil
}

// logError adds a hint to an answer of the log that did not verify.
func logError(err error) error {
	switch {
	case errors.Is(err, transparency.ErrWrongKey):
		return fmt.Errorf("%w (hint: the CH's log is signed by another key than its GET /cluster names: a key rotation during this command? run it again)", err)
	case errors.Is(err, transparency.ErrBadProof), errors.Is(err, transparency.ErrBadCheckpoint):
		return fmt.Errorf("%w (hint: the CH's log does not prove what it claims; keep this output as evidence)", err)
	}
	return err
}

func hexes(p [][]byte) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func auditProof(args []string) error {
	f := newAuditFlags("proof")
	id := f.fs.String("device", "", "device `ID` whose latest join to prove")
	height := f.fs.Int64("height", -1, "prove the block at this `height` instead of a device's join")
	p, ctx, done, err := f.open(args)
	if err != nil {
		return err
	}
	defer done()
	if (*id == "") == (*height < 0) {
		return usageError{msg: "name the block with --device ID or --height N"}
	}
	info, key, err := p.ClusterKey(ctx)
	if err != nil {
		return logError(err)
	}
	in, err := p.Proof(ctx, key, info.Cluster, *id, uint64(max(*height, 0)))
	if err != nil {
		return logError(err)
	}
	leaf := transparency.LeafHash(in.BlockHash)
	if *f.json {
		return printJSON(map[string]any{
			"tree_size": in.Checkpoint.Size, "leaf_index": in.Index, "leaf_hash": hex.EncodeToString(leaf[:]),
			"block_hash": hex.EncodeToString(in.BlockHash[:]), "path": hexes(in.Path), "root": hex.EncodeToString(in.Checkpoint.Root[:]),
			"checkpoint": hex.EncodeToString(in.Checkpoint.Signed), "key": hex.EncodeToString(in.Checkpoint.KID[:]),
		})
	}
	what := fmt.Sprintf("block %d", in.Index)
	if *id != "" {
		// The proof shows that the block is in the log, not what it holds.
		what = fmt.Sprintf("block %d, which the CH names as the latest join of %s (an export shows its events),", in.Index, *id)
	}
	fmt.Printf("%s is in the log: leaf %d of tree size %d, root %x, %d-hash path verified; checkpoint signed by %x\n",
		what, in.Index, in.Checkpoint.Size, in.Checkpoint.Root, len(in.Path), in.Checkpoint.KID)
	return nil
}

func auditConsistency(args []string) error {
	f := newAuditFlags("consistency")
	from := f.fs.Uint64("from", 0, "the earlier tree `size` (number of blocks)")
	p, ctx, done, err := f.open(args)
	if err != nil {
		return err
	}
	defer done()
	if *from == 0 {
		return usageError{msg: "--from N (a tree size ≥ 1) is required"}
	}
	info, key, err := p.ClusterKey(ctx)
	if err != nil {
		return logError(err)
	}
	c, err := p.Consistency(ctx, key, info.Cluster, *from)
	if err != nil {
		return logError(err)
	}
	if *f.json {
		return printJSON(map[string]any{
			"old_size": c.OldSize, "new_size": c.Checkpoint.Size, "old_root": hex.EncodeToString(c.OldRoot[:]),
			"new_root": hex.EncodeToString(c.Checkpoint.Root[:]), "path": hexes(c.Path),
			"checkpoint": hex.EncodeToString(c.Checkpoint.Signed),
		})
	}
	fmt.Printf("tree size %d (root %x) is a prefix of tree size %d (root %x): %d-hash proof verified\n",
		c.OldSize, c.OldRoot, c.Checkpoint.Size, c.Checkpoint.Root, len(c.Path))
	return nil
}

func auditWatch(args []string) error {
	f := newAuditFlags("watch")
	state := f.fs.String("state", "", "state `file`: the CH key and the last checkpoint verified (created on the first check)")
	interval := f.fs.Duration("interval", time.Minute, "time between checks")
	once := f.fs.Bool("once", false, "check once and exit")
	p, _, done, err := f.open(args, "state")
	if err != nil {
		return err
	}
	defer done()
	st, err := audit.LoadState(*state)
	if err != nil {
		return err
	}
	w := &audit.Watcher{CH: p, State: st}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), *f.timeout)
		cp, err := w.Check(ctx)
		cancel()
		var fork *transparency.ForkError
		if errors.As(err, &fork) {
			printFork(fork, *f.json)
			return fmt.Errorf("%w (hint: the CH rewrote or rolled back its log, or the network replays an old checkpoint; both signed checkpoints are printed above)", err)
		}
		if errors.Is(err, audit.ErrKeyChanged) {
			return fmt.Errorf("%w (hint: if the CH key really changed, check its new thumbprint out of band and watch with a new --state file; %s is the evidence of the old key's log)", err, *state)
		}
		if err != nil {
			return logError(err)
		}
		if err := st.Save(*state); err != nil {
			return err
		}
		if *f.json {
			if err := printJSON(map[string]any{"tree_size": cp.Size, "root": hex.EncodeToString(cp.Root[:]), "time_ms": cp.TimeMS, "checkpoint": hex.EncodeToString(cp.Signed)}); err != nil {
				return err
			}
		} else {
			fmt.Printf("%s checkpoint of %s: tree size %d, root %x, consistent with every earlier one kept\n",
				time.Now().UTC().Format(time.RFC3339), cp.Cluster, cp.Size, cp.Root)
		}
		if *once {
			return nil
		}
		time.Sleep(*interval)
	}
}

// printFork prints the evidence of a fork: both signed checkpoints.
func printFork(f *transparency.ForkError, asJSON bool) {
	cp := func(c *transparency.Checkpoint) map[string]any {
		return map[string]any{"tree_size": c.Size, "root": hex.EncodeToString(c.Root[:]), "time_ms": c.TimeMS,
			"key": hex.EncodeToString(c.KID[:]), "checkpoint": hex.EncodeToString(c.Signed)}
	}
	if asJSON {
		_ = printJSON(map[string]any{"fork": f.Reason, "old": cp(f.Old), "new": cp(f.New)})
		return
	}
	fmt.Printf("FORK: %s\n", f.Reason)
	for _, c := range []struct {
		name string
		cp   *transparency.Checkpoint
	}{{"earlier checkpoint (kept)", f.Old}, {"new checkpoint", f.New}} {
		fmt.Printf("-- %s, signed by %x:\n%s%s\n", c.name, c.cp.KID, c.cp.Text(), hex.EncodeToString(c.cp.Signed))
	}
}

const exportUsage = `Usage: iotguard ledger export --data DIR --out FILE

Writes every block of the stopped CH's ledger and a checkpoint over them,
signed by the CH key in DIR, to FILE, followed by the session-grant records
of every batch on the ledger whose records the grant log (grants.db) still
holds (pruned batches keep only their count and root on the ledger): what
an auditor checks offline with 'iotguard audit verify-export FILE --pin
THUMBPRINT'. After a CH key rotation the export names every key, and the
pin may be the first one or the one in force.
`

func ledgerExport(args []string) error {
	fs := flag.NewFlagSet("ledger export", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head (stopped)")
	out := fs.String("out", "", "export `file` to write")
	if err := Parse(fs, exportUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "data", "out"); err != nil {
		return err
	}
	l, err := clusterhead.OpenLedger(*dir)
	if err != nil {
		return err
	}
	defer l.Close()
	keys, err := keysvc.Load(*dir)
	if err != nil {
		return err
	}
	grants, closeGrants, err := exportGrants(*dir)
	if err != nil {
		return err
	}
	defer closeGrants()
	file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("failed to create export: %w (hint: remove it first, or pick another --out)", err)
	}
	progress := bench.TerminalProgress(os.Stderr)
	progress.Start("exporting blocks", 0)
	cp, err := audit.Export(file, l, grants, l.Cluster(), keys, bench.Steps(progress, "exporting blocks"))
	progress.Finish()
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return err
	}
	thumb := keys.Thumbprint()
	fmt.Printf("exported %d blocks of %s to %s: tree root %x, signed by %x\n", cp.Size, cp.Cluster, *out, cp.Root, thumb)
	return nil
}

// exportGrants opens the grant log of the stopped CH in dir for an export:
// nil (no records exported) when dir has none.
func exportGrants(dir string) (audit.Grants, func(), error) {
	g, err := clusterhead.OpenGrantLog(dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "no grant log (%s) in %s: the export carries no session-grant records\n", ledger.GrantLogFile, dir)
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return g, func() { g.Close() }, nil
}

func auditVerifyExport(args []string) error {
	fs := flag.NewFlagSet("audit verify-export", flag.ContinueOnError)
	pinFlag := fs.String("pin", "", "thumbprint (`hex`) of a CH key of the export: the one in force, or one the signed rotations on its chain lead from (the first)")
	asJSON := fs.Bool("json", false, "print JSON (hashes in hex)")
	state := fs.String("state", "", "an 'audit watch' state `file`: its checkpoint must be the tree of the export's first blocks (else a fork, both checkpoints printed)")
	var claims []string
	fs.Func("grant-proof", "a `FILE` that 'ledger grant-proof' wrote: prove that grant against the export's chain (repeatable)", func(f string) error {
		claims = append(claims, f)
		return nil
	})
	file, err := parseArg(fs, auditUsage, args)
	if err != nil {
		return err
	}
	if file == "" {
		return usageError{msg: "name the export file: iotguard audit verify-export FILE --pin THUMBPRINT"}
	}
	if err := Required(fs, "pin"); err != nil {
		return err
	}
	pin, err := parsePin(*pinFlag)
	if err != nil {
		return err
	}
	kept, err := keptCheckpoint(*state)
	if err != nil {
		return err
	}
	r, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("failed to open export: %w", err)
	}
	defer r.Close()
	progress := bench.TerminalProgress(os.Stderr)
	rep, err := audit.VerifyExportSince(r, [32]byte(pin), kept, bench.Steps(progress, "verifying blocks"))
	progress.Finish()
	var fork *transparency.ForkError
	if errors.As(err, &fork) {
		printFork(fork, *asJSON)
		return fmt.Errorf("%w (hint: the export is not the log %s kept a checkpoint of: the CH rewrote or rolled back its history; both signed checkpoints are printed above)", err, *state)
	}
	var bad *ledger.BadBlockError
	if errors.As(err, &bad) {
		fmt.Printf("export BROKEN at block %d: %s\n", bad.Height, bad.Reason)
		return exitError(1)
	}
	if errors.Is(err, ledger.ErrBadGrant) {
		fmt.Printf("export BROKEN: %s\n", err)
		return exitError(1)
	}
	if err != nil {
		return logError(err)
	}
	proven, err := checkGrantClaims(rep, claims)
	if err != nil {
		return err
	}
	cp, g := rep.Checkpoint, rep.Grants
	if *asJSON {
		return printJSON(map[string]any{"cluster": rep.Cluster, "tree_size": cp.Size, "root": hex.EncodeToString(cp.Root[:]),
			"time_ms": cp.TimeMS, "devices": rep.Devices, "key": hex.EncodeToString(cp.KID[:]), "checkpoint": hex.EncodeToString(cp.Signed),
			"grant_batches": g.Batches, "grants": g.Grants, "pruned_grant_batches": g.PrunedBatches, "pruned_grants": g.PrunedGrants,
			"grants_proven": proven})
	}
	fmt.Printf("export intact: cluster %s, %d blocks, %d devices, tree root %x, checkpoint signed by %x\n",
		rep.Cluster, cp.Size, rep.Devices, cp.Root, cp.KID)
	fmt.Printf("audit records: %d in %d batch(es) checked; %d in %d batch(es) pruned, as the chain's grants-pruned events say, not in the export\n",
		g.Grants, g.Batches, g.PrunedGrants, g.PrunedBatches)
	if kept != nil {
		fmt.Printf("consistent with the checkpoint kept in %s: its tree is the export's first blocks\n", *state)
	}
	for _, line := range proven {
		fmt.Println(line)
	}
	return nil
}

// keptCheckpoint returns the signed checkpoint an 'audit watch' state file
// keeps, nil for no file.
func keptCheckpoint(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("failed to read watch state: %w", err)
	}
	st, err := audit.LoadState(path)
	if err != nil {
		return nil, err
	}
	if st.Checkpoint == "" {
		return nil, fmt.Errorf("watch state %s keeps no checkpoint", path)
	}
	kept, err := hex.DecodeString(st.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("failed to read the checkpoint kept in %s: %w", path, err)
	}
	return kept, nil
}

// checkGrantClaims proves each grant-proof file against the checked export
// and returns a line for each; the first that does not prove exits 1.
func checkGrantClaims(rep *audit.ExportReport, files []string) ([]string, error) {
	lines := []string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var c audit.GrantClaim
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s is not a 'ledger grant-proof' file: %w", f, err)
		}
		grant, err := rep.CheckGrant(c)
		if errors.Is(err, audit.ErrGrantClaim) {
			fmt.Printf("grant NOT proven (%s): %s\n", f, err)
			return nil, exitError(1)
		}
		if err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("grant proven (%s): %s, record %d of batch %d in block %d", f, audit.Describe(grant), c.Index, c.Batch, c.Block))
	}
	return lines, nil
}
