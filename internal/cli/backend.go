package cli

import (
	"context"
	"log/slog"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/ledger"
)

// CometBFT is what bin/iotguard-cometbft (bftledger/cmd/iotguard-cometbft)
// adds to the command tree: the replicated ledger behind 'serve --ledger
// cometbft' and 'ledger verify|list --cometbft-home', and its own
// subcommands. The default binary passes nil to [Run] and contains no
// CometBFT code.
type CometBFT struct {
	// Name is the binary's name, for help texts.
	Name string
	// Opener returns the ledger of a CH of cluster on the node in home.
	Opener func(home, cluster string, log *slog.Logger) clusterhead.LedgerOpener
	// Verify verifies the ledger of the stopped node in home and returns a
	// one-line summary; a *ledger.BadBlockError names the first bad block.
	Verify func(ctx context.Context, home string) (string, error)
	// Blocks calls fn for every ledger block of the stopped node in home.
	Blocks func(home string, fn func(ledger.Block) error) error
	// Commands are the extra subcommands (localnet, node, cluster-entry).
	Commands []Command
}

// errNoCometBFT explains how to get a binary with --ledger cometbft.
var errNoCometBFT = usageError{msg: "this iotguard was built without CometBFT: use bin/iotguard-cometbft ('make build-cometbft')"}

// commands returns the subcommands of the CometBFT backend, if built in.
func (c *CometBFT) commands() []Command {
	if c == nil {
		return nil
	}
	return c.Commands
}
