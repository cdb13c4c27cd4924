package cli

import (
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/pemkey"
)

const serveUsage = `Usage: iotguard serve [--config FILE] [flags]

Runs a cluster head: CoAP over UDP on --listen, the ledger and the CH key in
--data (created on first start, key file mode 0600). SIGINT/SIGTERM stop it
cleanly. An operator revokes devices with 'iotguard revoke --data DIR'.

--admission says who may join. enrolled: only devices the operator enrolled
('iotguard enroll add', also while the server runs) or that carry a
credential of a fleet key given with --fleet-key ('iotguard fleet'). open:
anyone who makes a key and claims a position inside the radius (demos only;
the server warns at start, and GET /cluster says so). --fleet-key takes a
public key file; repeat it (or, from the environment or the config file,
separate files with commas) to trust two keys while one is rotated.

With --ledger cometbft (only in bin/iotguard-cometbft: 'make build-cometbft')
the ledger is shared with other cluster heads: a CometBFT node runs in this
process on --cometbft-home, and the CH key in --data must be registered for
--cluster-id in its genesis (see 'iotguard-cometbft localnet --help', a
command of that binary only).

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
held to --rate-limit; every request from a new source endpoint (a join, a
member's /verify, /session or /leave, a public GET) is served without an
association, at most 4,096 at once (joins at most 2,048); what else gets
one (a ping, a request with an unknown critical option: go-coap's
connection, until 16 s idle) gets it only within --max-associations and
--association-rate, and otherwise its datagrams are dropped unanswered, as
are datagrams sent to a multicast or broadcast address; a source whose
address no Echo verified gets nothing larger than three times its request
(the public GETs answer it 4.01 + Echo first). Against senders who do
receive, from however many addresses: a join that no enrollment or trusted
fleet key could admit is refused before its signature is checked, and at
most --join-rate others a second have theirs checked, all sources
together; beyond, a join is answered 5.03 with Max-Age and the device
sends it again.

With --pprof the metrics address also serves net/http/pprof under
/debug/pprof/ (go tool pprof http://ADDR/debug/pprof/profile?seconds=30): a
profile of this process under its real load. Off by default; it needs
--metrics, and that address should stay on loopback, or require credentials:
--metrics-web-config takes a Prometheus web configuration file (HTTPS,
client certificates, basic auth with bcrypt hashes), as Prometheus's own
exporters do.

Examples:
  iotguard serve
  iotguard serve --listen 0.0.0.0:5683 --data /var/lib/iotguard \
      --cluster-id plant-7 --position 48.8566,2.3522 --radius 500 \
      --admission enrolled --fleet-key fleet-2025.pub --fleet-key fleet-2026.pub
  iotguard serve --config /etc/iotguard/iotguard.toml --log-format json
  iotguard serve --dtls-listen 127.0.0.1:5684
  iotguard serve --metrics 0.0.0.0:9464 --metrics-web-config /etc/iotguard/web.yml

Flags:
`

func serve(args []string, cmt *CometBFT) error {
	fs, s := newServeFlags("serve")
	eff, err := s.load(fs, serveUsage, args)
	if err != nil {
		return err
	}
	log := s.logger()
	fleet, err := loadFleetKeys(s.fleetKeys)
	if err != nil {
		return err
	}
	var open clusterhead.LedgerOpener
	switch {
	case *s.backend == "bolt":
	case *s.backend != "cometbft":
		return usageError{msg: fmt.Sprintf("--ledger: unknown backend %q (bolt or cometbft)", *s.backend)}
	case cmt == nil:
		return errNoCometBFT
	case *s.home == "":
		return usageError{msg: "--cometbft-home is required with --ledger cometbft"}
	default:
		open = cmt.Opener(*s.home, string(s.id), log)
	}
	logSettings(log, eff)
	ch, err := clusterhead.Start(clusterhead.Config{
		Listen: *s.listen, DTLSListen: *s.dtlsListen, DataDir: *s.data, RateLimit: *s.rateLimit,
		MaxAssociations: *s.maxAssoc, AssociationRate: *s.assocRate, Logger: log, Metrics: *s.metrics, MetricsWebConfig: *s.metricsWeb, Pprof: *s.pprof, Ledger: open,
		Cluster: cluster.Config{ID: string(s.id), Position: cluster.Position(s.position), Radius: *s.radius,
			MemberTTL: *s.memberTTL, SessionTTL: *s.sessionTTL, Admission: cluster.Admission(s.admission), FleetKeys: fleet, JoinRate: *s.joinRate},
	})
	if err != nil {
		return err
	}
	if cluster.Admission(s.admission) == cluster.AdmissionOpen {
		log.Warn("admission is OPEN: anyone who makes a key and claims a position inside the radius joins; use --admission enrolled outside demos")
	}
	head, _, _ := ch.Ledger.Head()
	thumb := ch.Keys.Thumbprint()
	coaps := ""
	if a := ch.DTLSAddr(); a != "" {
		coaps = "coaps://" + a
	}
	log.Info("cluster head serving", "coap", "coap://"+ch.Addr(), "coaps", coaps, "cluster", string(s.id), "position", cluster.Position(s.position).String(),
		"radius_m", *s.radius, "data", *s.data, "height", head.Height, "metrics", ch.MetricsAddr(), "ch_key_thumbprint", fmt.Sprintf("%x", thumb),
		"admission", cluster.Admission(s.admission).String(), "fleet_keys", len(fleet))
	n := notifyReady(log, fmt.Sprintf("serving cluster %s on coap://%s, height %d", string(s.id), ch.Addr(), head.Height),
		func() error { _, _, err := ch.Ledger.Head(); return err })
	WaitSignal(log)
	n.stopping()
	return ch.Close()
}

// loadFleetKeys reads the trusted fleet public keys. A fleet private key is
// refused: the CH must never hold one.
func loadFleetKeys(files []string) ([]*ecdsa.PublicKey, error) {
	var keys []*ecdsa.PublicKey
	for _, f := range files {
		k, err := pemkey.ReadPublic(f)
		if errors.Is(err, pemkey.ErrPrivateKey) {
			return nil, fmt.Errorf("--fleet-key %s is a fleet PRIVATE key: the cluster head must never hold it; give it the public key ('iotguard fleet pubkey --fleet %s > fleet.pub')", f, f)
		}
		if err != nil {
			return nil, fmt.Errorf("--fleet-key: %w (want the PEM public key from 'iotguard fleet pubkey')", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
