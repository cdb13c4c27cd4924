// Command iotguard-cometbft is iotguard with the CometBFT ledger: 'serve
// --ledger cometbft', 'ledger verify|list --cometbft-home', and the
// subcommands localnet, node and cluster-entry (commands.go).
package main

import (
	"os"

	"github.com/iotguard/iotguard/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stderr, cometBFT))
}
