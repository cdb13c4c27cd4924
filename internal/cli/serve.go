package cli

import (
	"fmt"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
)

const serveUsage = `Usage: iotguard serve [--config FILE] [flags]

Runs a cluster head: CoAP over UDP on --listen, the ledger and the CH key in
--data (created on first start, key file mode 0600). SIGINT/SIGTERM stop it
cleanly. An operator revokes devices with 'iotguard revoke --data DIR'.
With --ledger cometbft (bin/iotguard-cometbft) the ledger is shared with
other cluster heads: a CometBFT node runs in this process on --cometbft-home,
and the CH key in --data must be registered for --cluster-id in its genesis
(see 'iotguard localnet').

Every flag can also come from the environment, IOTGUARD_ and the flag name in
upper snake case (IOTGUARD_CLUSTER_ID), or from the TOML file --config FILE
(or IOTGUARD_CONFIG), keys named like the flags (cluster-id = "plant-7").
Precedence: flag > environment > file > default. 'iotguard config print'
shows the effective settings and where each came from. Under systemd
(contrib/systemd/iotguard.service) the server reports READY, STOPPING and
WATCHDOG to the service manager.

With --dtls-listen it also serves coaps (DTLS 1.2, PSK): a member connects
with its device ID as PSK identity and the key 'iotguard device psk' prints,
and sends /verify, /session and /leave as plain CBOR (coap-client-openssl).

Against floods of spoofed sources: each source (IPv4 address, IPv6 /64) is
held to --rate-limit; a new source endpoint gets an association (go-coap's
connection, until 16 s idle) only within --max-associations and
--association-rate, and otherwise its datagrams are dropped unanswered; a
source whose address no Echo verified gets nothing larger than three times
its request (the public GETs answer it 4.01 + Echo first).

With --pprof the metrics address also serves net/http/pprof under
/debug/pprof/ (go tool pprof http://ADDR/debug/pprof/profile?seconds=30): a
profile of this process under its real load. Off by default; it needs
--metrics, and that address should stay on loopback.

Examples:
  iotguard serve
  iotguard serve --listen 0.0.0.0:5683 --data /var/lib/iotguard \
      --cluster-id plant-7 --position 48.8566,2.3522 --radius 500
  iotguard serve --config /etc/iotguard/iotguard.toml --log-format json
  iotguard serve --dtls-listen 127.0.0.1:5684

Flags:
`

func serve(args []string, cmt *CometBFT) error {
	fs, s := newServeFlags("serve")
	eff, err := s.load(fs, serveUsage, args)
	if err != nil {
		return err
	}
	log := s.logger()
	var open clusterhead.LedgerOpener
	switch {
	case *s.backend == "bolt":
	case *s.backend != "cometbft":
		return usageError{fmt.Sprintf("--ledger: unknown backend %q (bolt or cometbft)", *s.backend)}
	case cmt == nil:
		return errNoCometBFT
	case *s.home == "":
		return usageError{"--cometbft-home is required with --ledger cometbft"}
	default:
		open = cmt.Opener(*s.home, string(s.id), log)
	}
	logSettings(log, eff)
	ch, err := clusterhead.Start(clusterhead.Config{
		Listen: *s.listen, DTLSListen: *s.dtlsListen, DataDir: *s.data, RateLimit: *s.rateLimit,
		MaxAssociations: *s.maxAssoc, AssociationRate: *s.assocRate, Logger: log, Metrics: *s.metrics, Pprof: *s.pprof, Ledger: open,
		Cluster: cluster.Config{ID: string(s.id), Position: cluster.Position(s.position), Radius: *s.radius,
			MemberTTL: *s.memberTTL, SessionTTL: *s.sessionTTL},
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
	log.Info("cluster head serving", "coap", "coap://"+ch.Addr(), "coaps", coaps, "cluster", string(s.id), "position", cluster.Position(s.position).String(),
		"radius_m", *s.radius, "data", *s.data, "height", head.Height, "metrics", ch.MetricsAddr(), "ch_key_thumbprint", fmt.Sprintf("%x", thumb))
	n := notifyReady(log, fmt.Sprintf("serving cluster %s on coap://%s, height %d", string(s.id), ch.Addr(), head.Height),
		func() error { _, _, err := ch.Ledger.Head(); return err })
	WaitSignal(log)
	n.stopping()
	return ch.Close()
}
