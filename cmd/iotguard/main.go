// Command iotguard runs an IoT-Guard cluster head, plays a device, inspects
// the ledger, runs the demo and the load generator. The command tree is
// internal/cli; bin/iotguard-cometbft (bftledger/cmd/iotguard-cometbft) is the
// same tree with the CometBFT ledger added.
package main

import (
	"os"

	"github.com/iotguard/iotguard/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stderr, nil))
}
