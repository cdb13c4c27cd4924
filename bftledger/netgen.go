package bftledger

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
)

// NetSpec describes a network of validators for GenerateNet.
type NetSpec struct {
	ChainID    string
	Validators int // number of validators, each with power 10

	// Hosts[i] is the address other validators dial for validator i;
	// nil means 127.0.0.1 for all. Validators listen on Listen (default
	// 127.0.0.1; use 0.0.0.0 for a multi-host network).
	Hosts  []string
	Listen string

	// P2PPorts[i] and RPCPorts[i] are validator i's ports; an RPC port of 0
	// turns its RPC server off.
	P2PPorts []int
	RPCPorts []int

	// Clusters and MaxEventSkewMS become the genesis app_state; a zero
	// MaxEventSkewMS is written as DefaultMaxEventSkew, so that the genesis
	// file says what applies.
	Clusters       []ClusterEntry
	MaxEventSkewMS int64

	// Tune, if set, adjusts validator i's configuration before it is written.
	Tune func(i int, c *cfg.Config)
}

// NodeDir is the CometBFT home of validator i inside a GenerateNet directory.
func NodeDir(dir string, i int) string { return filepath.Join(dir, "node"+strconv.Itoa(i)) }

// DefaultConfig is the CometBFT configuration of IoT-Guard validators:
// blocks only when there are transactions, a short commit timeout (a join
// waits for its block), P2P messages flushed every 10 ms, no transaction
// indexer (the application keeps its own index). A proposer that is down
// costs its height timeout_propose, then timeout_precommit (CometBFT waits
// it out even when the validators agreed on nil): both short on a LAN.
func DefaultConfig() *cfg.Config {
	c := cfg.DefaultConfig()
	c.Consensus.CreateEmptyBlocks = false
	c.Consensus.TimeoutPropose = time.Second
	c.Consensus.TimeoutPrevote = 200 * time.Millisecond
	c.Consensus.TimeoutPrecommit = 200 * time.Millisecond
	c.Consensus.TimeoutCommit = 100 * time.Millisecond
	c.Consensus.PeerGossipSleepDuration = 10 * time.Millisecond
	c.P2P.FlushThrottleTimeout = 10 * time.Millisecond
	c.P2P.PexReactor = false
	c.P2P.AddrBookStrict = false
	c.TxIndex.Indexer = "null"
	return c
}

// GenerateNet writes one CometBFT home per validator under dir (NodeDir),
// each with its config, node key, validator key and the shared genesis
// file. It refuses a directory that already holds a node0.
func GenerateNet(dir string, spec NetSpec) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("failed to generate network in %s: %w", dir, err)
	}
	n := spec.Validators
	switch {
	case n < 1:
		return fail(errors.New("need at least one validator"))
	case len(spec.P2PPorts) != n || len(spec.RPCPorts) != n:
		return fail(fmt.Errorf("need %d P2P and RPC ports", n))
	case spec.Hosts != nil && len(spec.Hosts) != n:
		return fail(fmt.Errorf("need %d hosts", n))
	case spec.ChainID == "":
		return fail(errors.New("empty chain ID"))
	}
	if _, err := os.Stat(NodeDir(dir, 0)); !errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("%s exists", NodeDir(dir, 0)))
	}
	state := &AppState{Clusters: spec.Clusters, MaxEventSkewMS: spec.MaxEventSkewMS}
	if state.MaxEventSkewMS == 0 {
		state.MaxEventSkewMS = DefaultMaxEventSkew
	}
	appState, err := state.Marshal()
	if err != nil {
		return fail(err)
	}
	if _, err := ParseAppState(appState); err != nil {
		return fail(err)
	}
	host := func(i int) string {
		if spec.Hosts == nil {
			return "127.0.0.1"
		}
		return spec.Hosts[i]
	}
	listen := spec.Listen
	if listen == "" {
		listen = "127.0.0.1"
	}
	homes := make([]string, n)
	ids := make([]p2p.ID, n)
	gen := &types.GenesisDoc{ChainID: spec.ChainID, GenesisTime: time.Now().UTC(), AppState: appState,
		ConsensusParams: types.DefaultConsensusParams()}
	for i := range n {
		homes[i] = NodeDir(dir, i)
		if err := os.MkdirAll(filepath.Join(homes[i], "config"), 0o700); err != nil {
			return fail(err)
		}
		if err := os.MkdirAll(filepath.Join(homes[i], "data"), 0o700); err != nil {
			return fail(err)
		}
		c := cfg.DefaultConfig().SetRoot(homes[i])
		key, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
		if err != nil {
			return fail(err)
		}
		ids[i] = key.ID()
		pv := privval.GenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
		pv.Save()
		pub, err := pv.GetPubKey()
		if err != nil {
			return fail(err)
		}
		gen.Validators = append(gen.Validators, types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: "node" + strconv.Itoa(i)})
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return fail(err)
	}
	for i, home := range homes {
		c := DefaultConfig().SetRoot(home)
		c.Moniker = "node" + strconv.Itoa(i)
		c.P2P.ListenAddress = "tcp://" + net.JoinHostPort(listen, strconv.Itoa(spec.P2PPorts[i]))
		var peers []string
		for j := range n {
			if j != i {
				peers = append(peers, string(ids[j])+"@"+net.JoinHostPort(host(j), strconv.Itoa(spec.P2PPorts[j])))
			}
		}
		c.P2P.PersistentPeers = strings.Join(peers, ",")
		c.P2P.AllowDuplicateIP = spec.Hosts == nil // all on one address
		c.RPC.ListenAddress = ""
		if spec.RPCPorts[i] != 0 {
			c.RPC.ListenAddress = "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.RPCPorts[i]))
		}
		if spec.Tune != nil {
			spec.Tune(i, c)
		}
		if err := c.ValidateBasic(); err != nil {
			return fail(err)
		}
		cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), c)
		if err := gen.SaveAs(c.GenesisFile()); err != nil {
			return fail(err)
		}
	}
	return homes, nil
}
