package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/admin"
)

const rotateUsage = `Usage: iotguard rotate-key --data DIR

Replaces the key of the cluster head running on data directory DIR, through
its control socket, without stopping it. The new key is drawn by the server;
the ledger records it in a rotate event signed by the old key, in a block
signed by the new one; GET /cluster then serves the new key with the chain of
rotations, so a device that pinned the old key accepts the new one. Members
that joined under the old key keep working; they move to the new key by
re-keying ('iotguard device rekey') or rejoining. The old private key stays in
DIR/ch-keys-retired.pem for them. 'iotguard ledger verify' checks the chain
of keys. Not available with a CometBFT ledger (its genesis fixes the key).

If the old key was compromised, see docs/SECURITY.md ("Stolen CH key").

Example:
  iotguard rotate-key --data /var/lib/iotguard
`

func rotateKey(args []string) error {
	fs := flag.NewFlagSet("rotate-key", flag.ContinueOnError)
	dir := fs.String("data", "iotguard-data", "data `directory` of the running server")
	if err := Parse(fs, rotateUsage, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := admin.RotateKey(ctx, *dir)
	if err != nil {
		return fmt.Errorf("rotate-key: %w", err)
	}
	fmt.Printf("rotated CH key: %s -> %s in block %d\n", r.Old, r.New, r.Height)
	return nil
}
