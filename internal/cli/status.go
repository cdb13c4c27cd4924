package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/iotguard/iotguard/admin"
)

const statusUsage = `Usage: iotguard status --data DIR [--format text|json]

Asks the cluster head running on data directory DIR, through its control
socket DIR/admin.sock, for its state: ledger height and the time of its last
block, members by status, admission mode, CH key thumbprint, listen
addresses, uptime. Exits 0 when the server runs, 1 with a message when not.

Examples:
  iotguard status --data /var/lib/iotguard
  iotguard status --data iotguard-data --format json
`

func statusCmd(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	dir := fs.String("data", "iotguard-data", "data `directory` of the server")
	format := fs.String("format", "text", "output `format`: text or json")
	if err := Parse(fs, statusUsage, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError{msg: "--format must be text or json"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := admin.GetStatus(ctx, *dir)
	if err != nil {
		return fmt.Errorf("status of %s: %w", *dir, err)
	}
	if *format == "json" {
		return json.NewEncoder(os.Stdout).Encode(st)
	}
	var members []string
	for _, s := range []string{"member", "left", "revoked"} {
		members = append(members, fmt.Sprintf("%s %d", s, st.Members[s]))
	}
	metricsAddr := st.Metrics
	if metricsAddr == "" {
		metricsAddr = "off"
	}
	fmt.Printf(`running      yes (uptime %s, since %s)
cluster      %s
height       %d (head %s)
last block   %s (%s ago)
members      %s
admission    %s
ch key       %s
coap         coap://%s
metrics      %s
`, st.Uptime().Round(time.Second), st.Started.Format(time.RFC3339), st.Cluster, st.Height, st.HeadHash[:16],
		st.LastBlock.Format(time.RFC3339), st.Now.Sub(st.LastBlock).Round(time.Second), strings.Join(members, ", "),
		st.Admission, st.Thumbprint, st.CoAP, metricsAddr)
	return nil
}
