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

	"golang.org/x/term"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/ledger"
)

const ledgerUsage = `Usage: iotguard ledger <verify|list> --data DIR [flags]

verify re-derives every block hash and signature and replays every event
against the device index; it exits 0 with the height when the chain is intact
and 1 naming the first bad block otherwise. list prints the blocks.
Both need the server stopped (the ledger file is locked while it runs).
With --cometbft-home DIR instead of --data they read the shared ledger of a
stopped CometBFT node (binaries built with -tags cometbft); verify then
replays every CometBFT block from genesis, checking the validators' commits.

Examples:
  iotguard ledger verify --data iotguard-data
  iotguard ledger list --data iotguard-data --format json
`

func ledgerCmd(args []string, cmt *CometBFT) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(ledgerUsage)
		if len(args) == 0 {
			return usageError{"missing ledger subcommand"}
		}
		return nil
	}
	switch args[0] {
	case "verify":
		return ledgerVerify(args[1:], cmt)
	case "list":
		return ledgerList(args[1:], cmt)
	}
	return usageError{fmt.Sprintf("unknown ledger subcommand %q", args[0])}
}

func ledgerVerify(args []string, cmt *CometBFT) error {
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head")
	home := fs.String("cometbft-home", "", "CometBFT home `directory` of a stopped node (instead of --data; -tags cometbft)")
	if err := Parse(fs, ledgerUsage, args); err != nil {
		return err
	}
	if *home != "" {
		return verifyCometBFT(*home, cmt)
	}
	if err := Required(fs, "data"); err != nil {
		return err
	}
	l, err := clusterhead.OpenLedger(*dir)
	if err != nil {
		return err
	}
	defer l.Close()
	var progress func(h, total uint64)
	if term.IsTerminal(int(os.Stderr.Fd())) { // progress on a terminal only; quiet in pipes
		last := time.Now()
		progress = func(h, total uint64) {
			if time.Since(last) > 100*time.Millisecond || h == total {
				fmt.Fprintf(os.Stderr, "\rverifying block %d/%d", h, total)
				last = time.Now()
			}
		}
		defer fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err := l.Verify(context.Background(), progress); err != nil {
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
	return nil
}

// listedEvent is an event as 'ledger list' shows it: IDs, times and reasons,
// key thumbprints rather than keys.
type listedEvent struct {
	Type      string `json:"type"`
	Device    string `json:"device"`
	Peer      string `json:"peer,omitempty"`
	Time      string `json:"time"`
	Expires   int64  `json:"expires,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

type listedBlock struct {
	Height uint64        `json:"height"`
	Hash   string        `json:"hash"`
	Prev   string        `json:"prev"`
	Time   string        `json:"time"`
	Events []listedEvent `json:"events"`
}

func ledgerList(args []string, cmt *CometBFT) error {
	fs := flag.NewFlagSet("ledger list", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head")
	format := fs.String("format", "text", "output `format`: text or json")
	home := fs.String("cometbft-home", "", "CometBFT home `directory` of a stopped node (instead of --data; -tags cometbft)")
	if err := Parse(fs, ledgerUsage, args); err != nil {
		return err
	}
	if *home == "" {
		if err := Required(fs, "data"); err != nil {
			return err
		}
	}
	if *format != "text" && *format != "json" {
		return usageError{"--format must be text or json"}
	}
	blocks := func(fn func(ledger.Block) error) error {
		l, err := clusterhead.OpenLedger(*dir)
		if err != nil {
			return err
		}
		defer l.Close()
		return l.Blocks(0, fn)
	}
	if *home != "" {
		if cmt == nil {
			return errNoCometBFT
		}
		blocks = func(fn func(ledger.Block) error) error { return cmt.Blocks(*home, fn) }
	}
	enc := json.NewEncoder(os.Stdout)
	return blocks(func(b ledger.Block) error {
		h, err := b.Header.Hash()
		if err != nil {
			return err
		}
		lb := listedBlock{Height: b.Header.Height, Hash: hex.EncodeToString(h[:]), Prev: hex.EncodeToString(b.Header.Prev[:]),
			Time: msTime(b.Header.Time), Events: []listedEvent{}}
		for _, e := range b.Events {
			lb.Events = append(lb.Events, listedEvent{Type: e.Type.String(), Device: e.Device, Peer: e.Peer, Time: msTime(e.Time),
				Expires: e.Expires, SessionID: hex.EncodeToString(e.SessionID), Reason: e.Reason})
		}
		if *format == "json" {
			return enc.Encode(lb)
		}
		fmt.Printf("block %d %s %s\n", lb.Height, lb.Hash[:16], lb.Time)
		for _, e := range lb.Events {
			fmt.Printf("  %-14s %s", e.Type, e.Device)
			if e.Peer != "" {
				fmt.Printf(" peer=%s", e.Peer)
			}
			if e.Reason != "" {
				fmt.Printf(" reason=%q", e.Reason)
			}
			fmt.Println()
		}
		return nil
	})
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

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
