package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/wire"
)

const serveUsage = `Usage: iotguard serve [flags]

Runs a cluster head: CoAP over UDP on --listen, the ledger and the CH key in
--data (created on first start, key file mode 0600). SIGINT/SIGTERM stop it
cleanly. An operator revokes devices with 'iotguard revoke --data DIR'.
With --ledger cometbft (bin/iotguard-cometbft) the ledger is shared with
other cluster heads: a CometBFT node runs in this process on --cometbft-home,
and the CH key in --data must be registered for --cluster-id in its genesis
(see 'iotguard localnet').

With --dtls-listen it also serves coaps (DTLS 1.2, PSK): a member connects
with its device ID as PSK identity and the key 'iotguard device psk' prints,
and sends /verify, /session and /leave as plain CBOR (coap-client-openssl).

Against floods of spoofed sources: each source (IPv4 address, IPv6 /64) is
held to --rate-limit; a new source endpoint gets an association (go-coap's
connection, until 16 s idle) only within --max-associations and
--association-rate, and otherwise its datagrams are dropped unanswered; a
source whose address no Echo verified gets nothing larger than three times
its request (the public GETs answer it 4.01 + Echo first).

Examples:
  iotguard serve
  iotguard serve --listen 0.0.0.0:5683 --data /var/lib/iotguard \
      --cluster-id plant-7 --position 48.8566,2.3522 --radius 500
  iotguard serve --dtls-listen 127.0.0.1:5684

Flags:
`

func serve(args []string, cmt *CometBFT) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5683", "UDP `address` for CoAP")
	dtlsListen := fs.String("dtls-listen", "", "UDP `address` for coaps, DTLS 1.2 with member PSKs (off when empty; 5684 is the usual port)")
	data := fs.String("data", "iotguard-data", "data `directory` (ledger, CH key)")
	metrics := fs.String("metrics", "", "HTTP `address` for Prometheus /metrics (off when empty)")
	id := fs.String("cluster-id", "cluster-1", "cluster `ID`")
	pos := fs.String("position", "48.8566,2.3522", "CH position `LAT,LON` in degrees")
	radius := fs.Float64("radius", 1000, "cluster radius in `metres` (great-circle distance)")
	memberTTL := fs.Duration("member-ttl", cluster.DefaultMemberTTL, "membership lifetime after a join")
	sessionTTL := fs.Duration("session-ttl", cluster.DefaultSessionTTL, "session key lifetime")
	rateLimit := fs.Float64("rate-limit", coapedge.DefaultRateLimit, "requests per second per source: an IPv4 address or an IPv6 /64 (0: off)")
	maxAssoc := fs.Int("max-associations", coapedge.DefaultMaxCoAPAssociations, "source endpoints (address:port) held at once, ~15 KiB each; datagrams of new ones beyond it are dropped (0: no bound)")
	assocRate := fs.Float64("association-rate", coapedge.DefaultCoAPAssociationRate, "new source endpoints admitted per second, all sources together (0: no bound)")
	backend := fs.String("ledger", "bolt", "ledger `backend`: bolt (in --data) or cometbft (a CometBFT node in --cometbft-home; bin/iotguard-cometbft)")
	home := fs.String("cometbft-home", "", "CometBFT home `directory` (config/, data/) for --ledger cometbft")
	if err := Parse(fs, serveUsage, args); err != nil {
		return err
	}
	if err := wire.CheckID(*id); err != nil {
		return usageError{fmt.Sprintf("--cluster-id: %v", err)}
	}
	p, err := cluster.ParsePosition(*pos)
	if err != nil {
		return usageError{err.Error()}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var open clusterhead.LedgerOpener
	switch {
	case *backend == "bolt":
	case *backend != "cometbft":
		return usageError{fmt.Sprintf("--ledger: unknown backend %q (bolt or cometbft)", *backend)}
	case cmt == nil:
		return errNoCometBFT
	case *home == "":
		return usageError{"--cometbft-home is required with --ledger cometbft"}
	default:
		open = cmt.Opener(*home, *id, log)
	}
	ch, err := clusterhead.Start(clusterhead.Config{
		Listen: *listen, DTLSListen: *dtlsListen, DataDir: *data, RateLimit: *rateLimit,
		MaxAssociations: *maxAssoc, AssociationRate: *assocRate, Logger: log, Metrics: *metrics, Ledger: open,
		Cluster: cluster.Config{ID: *id, Position: p, Radius: *radius, MemberTTL: *memberTTL, SessionTTL: *sessionTTL},
	})
	if err != nil {
		return err
	}
	head, _, _ := ch.Ledger.Head()
	thumb := ch.Keys.Thumbprint()
	coaps := ""
	if a := ch.DTLSAddr(); a != "" {
		coaps = "coaps://" + a
	}
	log.Info("cluster head serving", "coap", "coap://"+ch.Addr(), "coaps", coaps, "cluster", *id, "position", p.String(),
		"radius_m", *radius, "data", *data, "height", head.Height, "metrics", ch.MetricsAddr(), "ch_key_thumbprint", fmt.Sprintf("%x", thumb))
	WaitSignal(log)
	return ch.Close()
}
