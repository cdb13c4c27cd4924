package main

import (
	"context"
	"log/slog"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/ledger"
)

// cometBFT is what a binary built with -tags cometbft adds (cometbft.go):
// the replicated ledger and its commands. It is nil in the default binary,
// which then contains no CometBFT code.
var cometBFT *cometBFTBackend

type cometBFTBackend struct {
	// opener returns the ledger of a CH of cluster on the node in home.
	opener func(home, cluster string, log *slog.Logger) clusterhead.LedgerOpener
	// verify verifies the ledger of the stopped node in home and returns a
	// one-line summary; a *ledger.BadBlockError names the first bad block.
	verify func(ctx context.Context, home string) (string, error)
	// blocks calls fn for every ledger block of the stopped node in home.
	blocks func(home string, fn func(ledger.Block) error) error
	// commands are the extra subcommands (localnet, node).
	commands []command
}

// errNoCometBFT explains how to get a binary with --ledger cometbft.
var errNoCometBFT = usageError{"this iotguard was built without CometBFT: build it with 'make build-cometbft' (go build -tags cometbft)"}

// cometBFTCommands returns the subcommands of the CometBFT backend, if built in.
func cometBFTCommands() []command {
	if cometBFT == nil {
		return nil
	}
	return cometBFT.commands
}
