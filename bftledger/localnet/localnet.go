// Package localnet runs a shared ledger on one machine ('iotguard-cometbft
// localnet'): CometBFT validators with the IoT-Guard application on
// 127.0.0.1, and one cluster head per cluster, the CH of the i-th cluster in
// the same process as validator i. Every CH answers /verify about the
// devices of every cluster. Its keys are generated for trying it out only.
package localnet

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cometbft/cometbft/types"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/wire"
)

// Config describes a local network.
type Config struct {
	// Dir holds the network: Dir/node0 … (CometBFT homes: config, keys,
	// genesis with the cluster registry) and Dir/<cluster> (CH data).
	Dir string
	// Clusters are the cluster IDs of a new network, at most Validators. A
	// network that exists keeps the clusters of its genesis.
	Clusters   []string
	Validators int
	// Validator i listens for peers on 127.0.0.1:(P2PPort + 10·i) and for
	// RPC on the next port.
	P2PPort int
	// The CH of cluster i serves CoAP on 127.0.0.1:(CoAPPort + i), at
	// Position with Radius metres.
	CoAPPort int
	Position cluster.Position
	Radius   float64
	// Logger receives the log of every validator and CH; nil discards it.
	Logger *slog.Logger
}

// logger returns cfg.Logger, or one that discards.
func (cfg Config) logger() *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// ConfigError is returned for a configuration that cannot make the network:
// more clusters than validators, an invalid cluster ID, a directory with
// more validators than Validators. Its text names the flags of
// 'iotguard-cometbft localnet'.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

// Init creates cfg.Dir on first use and returns the cluster IDs of its
// genesis.
func Init(cfg Config) ([]string, error) {
	ids, err := initDir(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bftledger.NodeDir(cfg.Dir, cfg.Validators)); err == nil {
		return nil, &ConfigError{fmt.Sprintf("%s holds more than %d validators: pass --validators", cfg.Dir, cfg.Validators)}
	}
	return ids, nil
}

func initDir(cfg Config) ([]string, error) {
	genesis := filepath.Join(bftledger.NodeDir(cfg.Dir, 0), "config", "genesis.json")
	if _, err := os.Stat(genesis); err == nil {
		gen, err := types.GenesisDocFromFile(genesis)
		if err != nil {
			return nil, err
		}
		s, err := bftledger.ParseAppState(gen.AppState)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, c := range s.Clusters {
			ids = append(ids, c.ID)
		}
		return ids, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(cfg.Clusters) > cfg.Validators {
		return nil, &ConfigError{fmt.Sprintf("%d clusters need at least as many validators", len(cfg.Clusters))}
	}
	spec := bftledger.NetSpec{ChainID: "iotguard-localnet", Validators: cfg.Validators}
	for _, id := range cfg.Clusters {
		if err := wire.CheckID(id); err != nil {
			return nil, &ConfigError{fmt.Sprintf("--clusters: %q: %v", id, err)}
		}
		keys, err := keysvc.Open(filepath.Join(cfg.Dir, id), id)
		if err != nil {
			return nil, err
		}
		spec.Clusters = append(spec.Clusters, bftledger.ClusterEntry{ID: id, Key: keys.COSEKey()})
	}
	for i := range cfg.Validators {
		spec.P2PPorts = append(spec.P2PPorts, cfg.P2PPort+10*i)
		spec.RPCPorts = append(spec.RPCPorts, cfg.P2PPort+10*i+1)
	}
	if _, err := bftledger.GenerateNet(cfg.Dir, spec); err != nil {
		return nil, err
	}
	return cfg.Clusters, nil
}

// Net is a running local network.
type Net struct {
	chs        []*clusterhead.CH   // with their nodes
	validators []*bftledger.Ledger // the nodes without a CH
}

// Start initializes cfg.Dir if needed (see [Init]) and runs its validators,
// and the CHs of its clusters on the first of them, until Close.
func Start(cfg Config) (*Net, error) {
	ids, err := Init(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.logger()
	n := &Net{}
	for i := range cfg.Validators {
		home := bftledger.NodeDir(cfg.Dir, i)
		if i >= len(ids) {
			l, err := bftledger.Open(bftledger.Options{Home: home, Logger: bftledger.SlogLogger(log.With("node", i))})
			if err != nil {
				return nil, errors.Join(err, n.Close())
			}
			n.validators = append(n.validators, l)
			log.Info("validator running", "node", i, "home", home)
			continue
		}
		ch, err := clusterhead.Start(clusterhead.Config{
			Listen: "127.0.0.1:" + strconv.Itoa(cfg.CoAPPort+i), DataDir: filepath.Join(cfg.Dir, ids[i]), Logger: log.With("cluster", ids[i]),
			Cluster: cluster.Config{ID: ids[i], Position: cfg.Position, Radius: cfg.Radius},
			Ledger:  bftledger.CHOpener(home, ids[i], log.With("node", i)),
		})
		if err != nil {
			return nil, errors.Join(err, n.Close())
		}
		n.chs = append(n.chs, ch)
		thumb := ch.Keys.Thumbprint()
		log.Info("cluster head running", "node", i, "home", home, "cluster", ids[i], "coap", "coap://"+ch.Addr(),
			"ch_key_thumbprint", fmt.Sprintf("%x", thumb))
	}
	return n, nil
}

// Close stops the CHs, then the validators without a CH. First every CH
// writes its queued audit records (verify warnings, sessions) while all the
// nodes run: once more than a third of them has stopped, nothing commits,
// and a record would wait for its commit timeout and be lost.
func (n *Net) Close() error {
	for _, ch := range n.chs {
		ch.Core.Flush()
	}
	var errs []error
	for _, ch := range n.chs {
		errs = append(errs, ch.Close())
	}
	for _, l := range n.validators {
		errs = append(errs, l.Close())
	}
	n.chs, n.validators = nil, nil
	return errors.Join(errs...)
}
