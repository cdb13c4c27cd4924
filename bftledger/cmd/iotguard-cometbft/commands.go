package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/bftledger/localnet"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/cli"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/wire"
)

// cometBFT is what this binary adds to iotguard's command tree.
var cometBFT = &cli.CometBFT{
	Name: "iotguard-cometbft",
	Opener: func(home, cluster string, log *slog.Logger) clusterhead.LedgerOpener {
		return bftledger.CHOpener(home, cluster, log)
	},
	Verify: func(ctx context.Context, home string) (string, error) {
		r, err := bftledger.VerifyHome(ctx, home, nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("ledger intact: cometbft height %d, state hash %x, ledger height %d, head %x",
			r.Height, r.StateHash, r.Head.Height, r.Head.Hash), nil
	},
	Blocks: bftledger.ReadBlocks,
	Commands: []cli.Command{
		{Name: "localnet", Summary: "run a shared ledger of CometBFT validators and cluster heads on loopback", Usage: localnetUsage, Run: localnetCmd},
		{Name: "node", Summary: "run a CometBFT validator of the shared ledger without a cluster head", Usage: nodeUsage, Run: nodeCmd},
		{Name: "cluster-entry", Summary: "print a CH's registry entry for a shared ledger's genesis app_state", Usage: clusterEntryUsage, Run: clusterEntry},
	},
}

const localnetUsage = `Usage: iotguard-cometbft localnet [flags]

Runs a shared ledger on loopback: --validators CometBFT validators with the
IoT-Guard application, and one cluster head per --clusters entry, the CH of
the i-th cluster on validator i, serving CoAP on 127.0.0.1:(--coap-port + i).
Every CH answers /verify about the devices of every cluster. SIGINT stops all.

With --processes every node runs as a process of its own, logging to
DIR/nodeI.log; the log line of each names its PID and command line, so that
you can stop one (kill PID) and start it again with that command. Without it,
all run in this process.

On first use it creates --dir: DIR/node0 … (CometBFT homes: config, keys,
genesis with the cluster registry) and DIR/<cluster> (CH data: its key). Later
runs reuse it (the clusters then come from its genesis). With --init-only it
only creates the files, to run each node yourself (each CH on its own --listen
port):
  iotguard-cometbft serve --ledger cometbft --cometbft-home DIR/node0 --data DIR/cluster-a --cluster-id cluster-a
  iotguard-cometbft serve --ledger cometbft --cometbft-home DIR/node1 --data DIR/cluster-b --cluster-id cluster-b --listen 127.0.0.1:5684
  iotguard-cometbft node --cometbft-home DIR/node2

Examples:
  iotguard-cometbft localnet
  iotguard-cometbft localnet --processes
  iotguard-cometbft device keygen --id sensor-a --out a.json
  iotguard-cometbft device join --server coap://127.0.0.1:5683 --key a.json --position 48.857,2.352
  iotguard-cometbft device verify --server coap://127.0.0.1:5684 --key b.json --peer sensor-a
  iotguard-cometbft ledger verify --cometbft-home iotguard-localnet/node0     # after stopping

Flags:
`

func localnetCmd(args []string) error {
	fs := flag.NewFlagSet("localnet", flag.ContinueOnError)
	dir := fs.String("dir", "iotguard-localnet", "`directory` of the network")
	clusters := fs.String("clusters", "cluster-a,cluster-b", "comma-separated cluster `IDs` (at most --validators)")
	validators := fs.Int("validators", 4, "number of validators")
	p2pPort := fs.Int("p2p-port", 26656, "validator i listens for peers on 127.0.0.1:(`port` + 10·i) and RPC on the next port")
	coapPort := fs.Int("coap-port", 5683, "the CH of cluster i serves CoAP on 127.0.0.1:(`port` + i)")
	pos := fs.String("position", "48.8566,2.3522", "position `LAT,LON` of every CH")
	radius := fs.Float64("radius", 1000, "cluster radius in `metres`")
	initOnly := fs.Bool("init-only", false, "create the directory and exit")
	processes := fs.Bool("processes", false, "run every node as a process of its own")
	if err := cli.Parse(fs, localnetUsage, args); err != nil {
		return err
	}
	p, err := cluster.ParsePosition(*pos)
	if err != nil {
		return cli.Usagef("%s", err)
	}
	cfg := localnet.Config{Dir: *dir, Clusters: strings.Split(*clusters, ","), Validators: *validators,
		P2PPort: *p2pPort, CoAPPort: *coapPort, Position: p, Radius: *radius,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if *initOnly {
		ids, err := localnet.Init(cfg)
		if err != nil {
			return localnetError(err)
		}
		fmt.Printf("created %s: %d validators, clusters %s\n", cfg.Dir, cfg.Validators, strings.Join(ids, ", "))
		return nil
	}
	var net interface{ Close() error }
	if *processes {
		exe, err := program()
		if err != nil {
			return err
		}
		net, err = localnet.StartProcesses(cfg, exe)
		if err != nil {
			return localnetError(err)
		}
	} else if net, err = localnet.Start(cfg); err != nil {
		return localnetError(err)
	}
	cli.WaitSignal(cfg.Logger)
	if err := net.Close(); err != nil {
		cfg.Logger.Error("stop", "err", err)
	}
	return nil
}

// program is this program, to run as the nodes: the name it was started
// with (as the test scripts start it), else its executable.
func program() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return p, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("failed to find this program to run the nodes: %w", err)
	}
	return p, nil
}

// localnetError makes a configuration error a usage error.
func localnetError(err error) error {
	var ce *localnet.ConfigError
	if errors.As(err, &ce) {
		return cli.Usagef("%s", ce)
	}
	return err
}

const nodeUsage = `Usage: iotguard-cometbft node --cometbft-home DIR

Runs a CometBFT validator (or full node) of the shared ledger with the
IoT-Guard application and no cluster head, until SIGINT/SIGTERM. DIR holds
config/ (config.toml, genesis.json, node_key.json, priv_validator_key.json)
and data/.

Example:
  iotguard-cometbft node --cometbft-home iotguard-localnet/node2

Flags:
`

func nodeCmd(args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	home := fs.String("cometbft-home", "", "CometBFT home `directory`")
	if err := cli.Parse(fs, nodeUsage, args); err != nil {
		return err
	}
	if err := cli.Required(fs, "cometbft-home"); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	l, err := bftledger.Open(bftledger.Options{Home: *home, Logger: bftledger.SlogLogger(log)})
	if err != nil {
		return err
	}
	log.Info("validator running", "home", *home, "chain", l.ChainID())
	cli.WaitSignal(log)
	return l.Close()
}

const clusterEntryUsage = `Usage: iotguard-cometbft cluster-entry --data DIR --cluster-id ID

Prints the JSON entry that registers a cluster head in the app_state of a
shared ledger's genesis.json ({"id": …, "key": base64 COSE_Key of the CH
public key}). It creates the CH key in DIR (mode 0600) if there is none yet.

Example:
  iotguard-cometbft cluster-entry --data /var/lib/iotguard --cluster-id plant-7

Flags:
`

func clusterEntry(args []string) error {
	fs := flag.NewFlagSet("cluster-entry", flag.ContinueOnError)
	dir := fs.String("data", "", "data `directory` of the cluster head")
	id := fs.String("cluster-id", "", "cluster `ID`")
	if err := cli.Parse(fs, clusterEntryUsage, args); err != nil {
		return err
	}
	if err := cli.Required(fs, "data", "cluster-id"); err != nil {
		return err
	}
	if err := wire.CheckID(*id); err != nil {
		return cli.Usagef("--cluster-id: %v", err)
	}
	keys, err := keysvc.Open(*dir, *id)
	if err != nil {
		return err
	}
	b, err := json.Marshal(bftledger.ClusterEntry{ID: *id, Key: keys.COSEKey()})
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
