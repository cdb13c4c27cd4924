package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/audit"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/bench"
	"github.com/iotguard/iotguard/internal/ledgerlist"
	"github.com/iotguard/iotguard/ledger"
)

const ledgerUsage = `Usage: iotguard ledger <verify|list|export|backup|restore|prune-grants|grant-proof> --data DIR [flags]

verify re-derives every block hash and signature, replays every event
against the device index and checks the Merkle tree over the blocks; it
exits 0 with the height when the chain is intact and 1 naming the first bad
block otherwise. It then checks the audit records of grants.db (session
grants and warning verdicts) against their batches on the ledger. It
checks the blocks under the data directory's own CH keys and prints their
thumbprints; --pin THUMBPRINT (a key you hold: the one in force, or one
its signed rotations lead from) refuses a directory signed by other keys.
prune-grants --older-than D (2160h, 90d) deletes the grant records of
batches written before then: each batch's count and Merkle root stay on the
ledger (and in grants.db), so verify still checks them, and an inclusion
proof kept before the prune still verifies. It first appends a
grants-pruned event to the ledger (the batches it may delete; a batch
without records that no such event covers is reported withheld). It runs
while the server serves (through DIR/admin.sock) or on a stopped one, a
bounded number of records at a time; ^C stops it, and the next prune
finishes the job.
grant-proof --session SID (or --batch N --index I: any audit record, a
grant or a warning) prints, as JSON, one record, its batch and the
inclusion path from the record to the Merkle root of its batch's event on
the ledger. list prints the blocks; with --records, each session batch's
audit records (the session grants and warnings in grants.db) under it.
export --out FILE writes every block, a signed checkpoint over them and the
grant records of every batch not pruned, for 'iotguard audit verify-export'.
verify, list, export and grant-proof need the server stopped (the ledger
file is locked while it runs).
With --cometbft-home DIR instead of --data they read the shared ledger of a
stopped CometBFT node (bin/iotguard-cometbft); verify then replays every
CometBFT block from genesis, checking the validators' commits, and with
--data DIR --cluster-id ID also checks the grants.db of that cluster's CH
against the shared ledger.
backup and restore copy a data directory, the server running or not
('iotguard ledger backup --help').

Examples:
  iotguard ledger verify --data iotguard-data
  iotguard ledger verify --data iotguard-data --pin 3a383a186641c615591cf168aae2b78ba8937619cfbbb31bbc8f6c9dd8b8de08
  iotguard ledger list --data iotguard-data --format json
  iotguard ledger list --data iotguard-data --records
  iotguard ledger export --data iotguard-data --out ledger.export
  iotguard ledger backup --data iotguard-data --out backup.tar
  iotguard ledger prune-grants --data iotguard-data --older-than 90d
  iotguard ledger grant-proof --data iotguard-data --session 0f1e2d3c4b5a69788796a5b4c3d2e1f0
  iotguard ledger grant-proof --data iotguard-data --batch 3 --index 17
  iotguard-cometbft ledger verify --cometbft-home net/node0 --data net/cluster-a --cluster-id cluster-a
`

func ledgerCmd(args []string, cmt *CometBFT) error {
	return dispatch("ledger", ledgerUsage, args, map[string]func([]string) error{
		"verify": func(args []string) error { return ledgerVerify(args, cmt) },
		"list":   func(args []string) error { return ledgerList(args, cmt) },
		"export": ledgerExport, "prune-grants": ledgerPruneGrants, "grant-proof": ledgerGrantProof,
		"backup": ledgerBackup, "restore": ledgerRestore,
	})
}

func ledgerVerify(args []string, cmt *CometBFT) error {
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head (with --cometbft-home: the CH whose grants.db to check)")
	home := fs.String("cometbft-home", "", "CometBFT home `directory` of a stopped node (bin/iotguard-cometbft)")
	cluster := fs.String("cluster-id", "", "with --cometbft-home and --data: the `ID` of that CH's cluster")
	pinFlag := fs.String("pin", "", "thumbprint (`hex`) of a CH key the chain must be signed by: the one in force, or one its signed rotations lead from")
	if err := Parse(fs, ledgerUsage, args); err != nil {
		return err
	}
	if *home != "" {
		if *pinFlag != "" {
			return usageError{msg: "--pin checks the keys of a data directory's chain; a shared ledger's keys are in its genesis"}
		}
		if (*dir == "") != (*cluster == "") {
			return usageError{msg: "--data and --cluster-id go together: the CH of a shared ledger whose grants.db to check"}
		}
		if err := verifyCometBFT(*home, cmt); err != nil || *dir == "" {
			return err
		}
		return verifyGrants(cometBlocks{home: *home, cmt: cmt}, *dir, *cluster)
	}
	if err := Required(fs, "data"); err != nil {
		return err
	}
	var pin []byte
	if *pinFlag != "" {
		var err error
		if pin, err = parsePin(*pinFlag); err != nil {
			return err
		}
	}
	l, err := clusterhead.OpenLedger(*dir)
	if err != nil {
		return err
	}
	defer l.Close()
	if pin != nil {
		if err := ledger.Pinned(l.Keys(), [32]byte(pin)); err != nil {
			fmt.Printf("ledger NOT PINNED: the data directory's keys: %s\n", err)
			return exitError(1)
		}
	}
	progress := bench.TerminalProgress(os.Stderr) // quiet in pipes
	err = l.Verify(context.Background(), bench.Steps(progress, "verifying blocks"))
	progress.Finish()
	if err != nil {
		var bad *ledger.BadBlockError
		if errors.As(err, &bad) {
			fmt.Printf("ledger BROKEN at block %d: %s\n", bad.Height, bad.Reason)
			return exitError(1)
		}
		return err
	}
	head, _, err := l.Head()
	if err != nil {
		return err
	}
	fmt.Printf("ledger intact: height %d, head %x\n", head.Height, head.Hash)
	if pin != nil {
		fmt.Printf("signed by CH %s: the pinned key among them\n", ledger.Signers(l.Keys()))
	} else {
		fmt.Printf("signed by CH %s: the data directory's keys (--pin THUMBPRINT checks them against one you hold)\n", ledger.Signers(l.Keys()))
	}
	return verifyGrants(l, *dir, l.Cluster())
}

// cometBlocks reads the blocks of the stopped CometBFT node in home.
type cometBlocks struct {
	home string
	cmt  *CometBFT
}

func (c cometBlocks) Blocks(from uint64, fn func(ledger.Block) error) error {
	return c.cmt.Blocks(c.home, func(b ledger.Block) error {
		if b.Header.Height < from {
			return nil
		}
		return fn(b)
	})
}

// verifyGrants checks the session-batch events of cluster on the chain l
// against the audit records of the grant log in dir (ledger.CheckGrants).
func verifyGrants(l ledger.BlockReader, dir, cluster string) error {
	g, err := clusterhead.OpenGrantLog(dir)
	if errors.Is(err, os.ErrNotExist) {
		batches := 0
		err := l.Blocks(0, func(b ledger.Block) error {
			for _, ev := range b.Events {
				if ev.Type == ledger.EventSessionBatch && ev.Device == cluster {
					batches++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Printf("audit records: no grant log (%s) in %s: %d batch(es) on the ledger not checked\n", ledger.GrantLogFile, dir, batches)
		return nil
	}
	if err != nil {
		return err
	}
	defer g.Close()
	s, err := ledger.CheckGrants(context.Background(), l, g, cluster)
	if errors.Is(err, ledger.ErrBadGrant) {
		fmt.Printf("audit records BROKEN: %s\n", err)
		return exitError(1)
	}
	if err != nil {
		return err
	}
	fmt.Printf("audit records intact: %d in %d batch(es) (session grants and warnings), each batch's records hash to its root on the ledger\n", s.Grants, s.Batches)
	if s.Pruned > 0 {
		fmt.Printf("  of them %d pruned (records deleted; their batches' counts and roots checked)\n", s.Pruned)
	}
	if s.PendingBatches > 0 {
		fmt.Printf("audit records pending: %d in %d batch(es) not yet on the ledger (the cluster head stopped before appending them; it appends them at its next start)\n", s.PendingGrants, s.PendingBatches)
	}
	return nil
}

func ledgerList(args []string, cmt *CometBFT) error {
	fs := flag.NewFlagSet("ledger list", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head")
	format := fs.String("format", "text", "output `format`: text or json")
	withRecords := fs.Bool("records", false, "under each session batch, list its audit records (session grants, warnings) from grants.db")
	home := fs.String("cometbft-home", "", "CometBFT home `directory` of a stopped node (instead of --data; bin/iotguard-cometbft)")
	if err := Parse(fs, ledgerUsage, args); err != nil {
		return err
	}
	if *home == "" {
		if err := Required(fs, "data"); err != nil {
			return err
		}
	}
	if *withRecords && *home != "" {
		return usageError{msg: "--records needs --data: each cluster head of a shared ledger keeps its own grants.db"}
	}
	var grants *ledger.GrantLog // opened below, before the first block is shown
	var records ledgerlist.Records
	if *withRecords {
		records = func(seq uint64) ([]ledger.Event, error) { return grants.Events(seq) }
	}
	show, err := ledgerlist.Printer(os.Stdout, *format, records)
	if err != nil {
		return usageError{msg: "--format must be text or json"}
	}
	if *home != "" {
		if cmt == nil {
			return errNoCometBFT
		}
		return cmt.Blocks(*home, show)
	}
	l, err := clusterhead.OpenLedger(*dir)
	if err != nil {
		return err
	}
	defer l.Close()
	if *withRecords {
		if grants, err = clusterhead.OpenGrantLog(*dir); err != nil {
			return err
		}
		defer grants.Close()
	}
	return l.Blocks(0, show)
}

// verifyCometBFT verifies the ledger of a stopped CometBFT node.
func verifyCometBFT(home string, cmt *CometBFT) error {
	if cmt == nil {
		return errNoCometBFT
	}
	summary, err := cmt.Verify(context.Background(), home)
	var bad *ledger.BadBlockError
	if errors.As(err, &bad) {
		fmt.Printf("ledger BROKEN at block %d: %s\n", bad.Height, bad.Reason)
		return exitError(1)
	}
	if err != nil {
		return err
	}
	fmt.Println(summary)
	return nil
}

// ledgerPruneGrants deletes the records of old session batches from the grant
// log (ledger.GrantLog.Prune): through the running server's control socket,
// or on the data directory of a stopped one. ^C stops it between two of its
// transactions; the next prune finishes the job.
func ledgerPruneGrants(args []string) error {
	fs := flag.NewFlagSet("ledger prune-grants", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head (running or stopped)")
	age := fs.String("older-than", "", "delete the records of batches written longer ago than this (`D`: 2160h, 90d)")
	if err := Parse(fs, ledgerUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "data", "older-than"); err != nil {
		return err
	}
	olderThan, err := parseLifetime(*age)
	if err != nil {
		return usageError{msg: "--older-than: " + err.Error()}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := bench.TerminalProgress(os.Stderr)
	report := bench.Steps(progress, "pruning grant batches")
	var p ledger.Pruned
	mode := "online, through the running server"
	err = onServerCtx(ctx, *dir,
		func(ctx context.Context) (err error) {
			p, err = admin.PruneGrants(ctx, *dir, olderThan, report)
			return err
		},
		func(ctx context.Context) (err error) {
			mode = "offline, server stopped"
			p, err = clusterhead.PruneGrantsStopped(ctx, *dir, olderThan, report)
			return err
		})
	progress.Finish()
	if err != nil {
		return fmt.Errorf("prune-grants of %s: %w", *dir, err)
	}
	fmt.Printf("pruned %d grant records of %d batches written before %s (%s); their counts and roots stay on the ledger\n",
		p.Records, p.Batches, p.Before.UTC().Format(time.RFC3339), mode)
	if p.Horizon != 0 {
		fmt.Printf("the prune of batches below %d is on the ledger: grants-pruned event in block %d\n", p.Horizon, p.Block)
	}
	return nil
}

// ledgerGrantProof prints one grant's inclusion proof (ledger.ProveGrant).
func ledgerGrantProof(args []string) error {
	fs := flag.NewFlagSet("ledger grant-proof", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head")
	session := fs.String("session", "", "session `ID` in hex, as 'iotguard device session' prints it")
	batch := fs.Uint64("batch", 0, "instead of --session: the `number` of a batch, as 'ledger list --records' shows it")
	index := fs.Uint64("index", 0, "with --batch: the record's `position` in its batch, from 0 (a grant or a warning)")
	if err := Parse(fs, ledgerUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "data"); err != nil {
		return err
	}
	if (*session == "") == (*batch == 0) {
		return usageError{msg: "give --session SID, or --batch N --index I"}
	}
	if *session != "" && isSet(fs, "index") {
		return usageError{msg: "--index goes with --batch: a session is found by its ID"}
	}
	sid, err := hex.DecodeString(*session)
	if err != nil {
		return usageError{msg: "--session must be hex: " + err.Error()}
	}
	l, err := clusterhead.OpenLedger(*dir)
	if err != nil {
		return err
	}
	defer l.Close()
	g, err := clusterhead.OpenGrantLog(*dir)
	if err != nil {
		return err
	}
	defer g.Close()
	var p ledger.GrantProof
	if *batch != 0 {
		p, err = ledger.ProveAuditRecord(l, g, l.Cluster(), *batch, *index)
	} else {
		p, err = ledger.ProveGrant(l, g, l.Cluster(), sid)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(audit.NewGrantClaim(l.Cluster(), p))
}
