package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/admin"
)

const revokeUsage = `Usage: iotguard revoke --data DIR --id ID [--reason TEXT]

Revokes a device on the cluster head running on data directory DIR, through
its control socket DIR/admin.sock (mode 0600: only the server's user can use
it). The revocation is a ledger event; the device's member key dies with it
and later /verify answers about it are warnings.

Example:
  iotguard revoke --data iotguard-data --id sensor-a --reason "stolen"
`

func revoke(args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	dir := fs.String("data", "iotguard-data", "data `directory` of the running server")
	id := fs.String("id", "", "device `ID` to revoke")
	reason := fs.String("reason", "operator revoke", "reason recorded on the ledger")
	if err := Parse(fs, revokeUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "id"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	h, err := admin.Revoke(ctx, *dir, *id, *reason)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", *id, err)
	}
	fmt.Printf("revoked %s: block %d\n", *id, h)
	return nil
}
