package cli

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/iotguard/iotguard/internal/demo"
)

const demoUsage = `Usage: iotguard demo

Runs the whole scenario in one process on a temporary directory: a cluster
head, devices A and B joining inside the radius, C refused outside it, A and B
talking with a CH-issued session key, an impostor warned, A leaving, and the
ledger verified. Every step is printed.

Example:
  iotguard demo
`

func demoCmd(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if err := Parse(fs, demoUsage, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return demo.Run(ctx, os.Stdout)
}
