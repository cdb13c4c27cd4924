package bftledger_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// validators is the size of every test network: one faulty validator is
// tolerated (n ≥ 3f+1).
const validators = 4

// testNet is a CometBFT network of validators on 127.0.0.1, in this process,
// each with the IoT-Guard application. Cluster i's CH (a real cluster head
// serving CoAP on loopback) runs on validator i; the others are validators
// without a CH.
type testNet struct {
	t        *testing.T
	dir      string
	homes    []string
	clusters []string

	mu      sync.Mutex
	ledgers []*bftledger.Ledger // nil while stopped
	chs     []*clusterhead.CH   // one per cluster, nil while stopped
	opts    []func(*bftledger.Options)
	cfg     netConfig
}

// netConfig adjusts a test network.
type netConfig struct {
	// opts[i], if set, adjusts validator i's ledger options (a byzantine
	// proposer).
	opts map[int]func(*bftledger.Options)
	// maxSkewMS is the genesis max_event_skew_ms (0: the default).
	maxSkewMS int64
	// requestTimeout bounds a CH's wait for a commit (0: the default).
	requestTimeout time.Duration
}

// fastConsensus is the test tuning: P2P flushed every 10 ms, short commit
// and step timeouts (a dead proposer costs one propose timeout).
func fastConsensus(_ int, c *cfg.Config) {
	c.P2P.FlushThrottleTimeout = 10 * time.Millisecond
	c.P2P.DialTimeout = time.Second
	c.P2P.HandshakeTimeout = 5 * time.Second
	c.Consensus.TimeoutCommit = 20 * time.Millisecond
	c.Consensus.TimeoutPropose = 600 * time.Millisecond
	c.Consensus.TimeoutProposeDelta = 100 * time.Millisecond
	c.Consensus.TimeoutPrevote = 200 * time.Millisecond
	c.Consensus.TimeoutPrevoteDelta = 100 * time.Millisecond
	c.Consensus.TimeoutPrecommit = 200 * time.Millisecond
	c.Consensus.TimeoutPrecommitDelta = 100 * time.Millisecond
	c.Consensus.PeerGossipSleepDuration = 5 * time.Millisecond
	c.Consensus.PeerQueryMaj23SleepDuration = 200 * time.Millisecond
}

// freePorts returns n TCP ports free on 127.0.0.1 a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startNet generates and starts a network for clusters. opts[i], if set,
// adjusts validator i's ledger options (a byzantine proposer).
func startNet(t *testing.T, clusters []string, opts map[int]func(*bftledger.Options)) *testNet {
	t.Helper()
	return startNetWith(t, clusters, netConfig{opts: opts})
}

// startNetWith generates and starts a network for clusters, adjusted by nc.
func startNetWith(t *testing.T, clusters []string, nc netConfig) *testNet {
	t.Helper()
	n := &testNet{t: t, dir: t.TempDir(), clusters: clusters,
		ledgers: make([]*bftledger.Ledger, validators), chs: make([]*clusterhead.CH, len(clusters)),
		opts: make([]func(*bftledger.Options), validators), cfg: nc}
	for i, f := range nc.opts {
		n.opts[i] = f
	}
	var entries []bftledger.ClusterEntry
	for _, c := range clusters {
		keys, err := keysvc.Open(n.chDir(c), c)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, bftledger.ClusterEntry{ID: c, Key: keys.COSEKey()})
	}
	homes, err := bftledger.GenerateNet(n.dir, bftledger.NetSpec{
		ChainID: "iotguard-test", Validators: validators,
		P2PPorts: freePorts(t, validators), RPCPorts: make([]int, validators),
		Clusters: entries, MaxEventSkewMS: nc.maxSkewMS, Tune: fastConsensus,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.homes = homes
	t.Cleanup(func() {
		n.stopAll()
		if t.Failed() {
			n.dumpLogs()
		}
	})
	for i := range validators {
		n.start(i)
	}
	return n
}

// testFleet is a fleet key every CH of a test network trusts.
var testFleet = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// credential returns a fleet credential of testFleet for st, valid for an hour.
func credential(t *testing.T, st *device.State) []byte {
	t.Helper()
	b, err := issueCredential(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func issueCredential(st *device.State) ([]byte, error) {
	th := wire.Thumbprint(&st.Key.PublicKey)
	now := time.Now()
	return wire.IssueCredential(testFleet(), wire.Credential{ID: st.ID, Key: th[:],
		NotBefore: uint64(now.Add(-time.Minute).Unix()), NotAfter: uint64(now.Add(time.Hour).Unix())})
}

// fleetState returns a new device id carrying a credential of testFleet, which
// every CH of a test network trusts: for tests that are not about admission,
// where a join should be the only event a device writes.
func fleetState(id string) (*device.State, error) {
	st, err := device.NewState(id)
	if err != nil {
		return nil, err
	}
	st.Credential, err = issueCredential(st)
	return st, err
}

// fleetJoined returns a new device id, joined to ch with a fleet credential.
func fleetJoined(t *testing.T, ch *clusterhead.CH, id string) *device.Device {
	t.Helper()
	st, err := fleetState(id)
	if err != nil {
		t.Fatal(err)
	}
	d := chtest.Dial(t, ch, st)
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return d
}

func (n *testNet) chDir(cluster string) string { return filepath.Join(n.dir, "ch-"+cluster) }

// logger writes validator i's CometBFT log to a file in its home, shown when
// the test fails.
func (n *testNet) logger(i int) cmtlog.Logger {
	f, err := os.OpenFile(filepath.Join(n.homes[i], "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { f.Close() })
	l, _ := cmtlog.AllowLevel("info")
	return cmtlog.NewFilter(cmtlog.NewTMLogger(cmtlog.NewSyncWriter(f)), l)
}

func (n *testNet) dumpLogs() {
	for i, home := range n.homes {
		b, _ := os.ReadFile(filepath.Join(home, "node.log"))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var keep []string
		for _, l := range lines {
			if strings.Contains(l, "E[") || strings.Contains(l, "CONSENSUS FAILURE") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 20 {
			keep = keep[len(keep)-20:]
		}
		n.t.Logf("validator %d: last errors of %d log lines:\n%s", i, len(lines), strings.Join(keep, "\n"))
	}
}

// start starts validator i, with the CH of cluster i on it if there is one.
func (n *testNet) start(i int) {
	n.t.Helper()
	opts := bftledger.Options{Home: n.homes[i], Logger: n.logger(i)}
	if n.opts[i] != nil {
		n.opts[i](&opts)
	}
	if i >= len(n.clusters) {
		l, err := bftledger.Open(opts)
		if err != nil {
			n.t.Fatalf("start validator %d: %v", i, err)
		}
		n.mu.Lock()
		n.ledgers[i] = l
		n.mu.Unlock()
		return
	}
	c := n.clusters[i]
	ch := chtest.Start(n.t, n.chDir(c), func(cc *clusterhead.Config) {
		cc.Cluster = cluster.Config{ID: c, Position: chtest.Here, Radius: 1000, FleetKeys: []*ecdsa.PublicKey{&testFleet().PublicKey}}
		cc.RequestTimeout = n.cfg.requestTimeout
		cc.Ledger = func(keys *keysvc.Service, onCommit func(uint64, int)) (ledger.Ledger, error) {
			opts.Cluster, opts.Signer, opts.OnCommit = c, keys, onCommit
			l, err := bftledger.Open(opts)
			if err == nil {
				n.mu.Lock()
				n.ledgers[i] = l
				n.mu.Unlock()
			}
			return l, err
		}
	})
	n.mu.Lock()
	n.chs[i] = ch
	n.mu.Unlock()
}

// stop stops validator i (and its CH): it is gone from the network.
func (n *testNet) stop(i int) {
	n.t.Helper()
	n.mu.Lock()
	l, ch := n.ledgers[i], (*clusterhead.CH)(nil)
	if i < len(n.chs) {
		ch, n.chs[i] = n.chs[i], nil
	}
	n.ledgers[i] = nil
	n.mu.Unlock()
	var err error
	if ch != nil {
		err = ch.Close()
	} else if l != nil {
		err = l.Close()
	}
	if err != nil {
		n.t.Errorf("stop validator %d: %v", i, err)
	}
}

func (n *testNet) stopAll() {
	for i := range validators {
		n.stop(i)
	}
}

func (n *testNet) ledger(i int) *bftledger.Ledger {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ledgers[i]
}

func (n *testNet) ch(cluster string) *clusterhead.CH {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, c := range n.clusters {
		if c == cluster {
			return n.chs[i]
		}
	}
	n.t.Fatalf("no CH of %s", cluster)
	return nil
}

// poll calls cond every 20 ms until it returns nil or the deadline passes,
// then fails with cond's last error.
func poll(t *testing.T, what string, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agree waits until the running validators among which have committed the
// same CometBFT height with the same app hash and ledger head, then runs
// Verify on each and checks that every one passes.
func (n *testNet) agree(which ...int) (int64, [32]byte) {
	n.t.Helper()
	var height int64
	var hash [32]byte
	poll(n.t, "validators agree", 30*time.Second, func() error {
		for k, i := range which {
			h, a, err := n.ledger(i).State()
			if err != nil {
				return err
			}
			if k == 0 {
				height, hash = h, a
			} else if h != height || a != hash {
				return fmt.Errorf("validator %d at %d %x, validator %d at %d %x", which[0], height, hash[:4], i, h, a[:4])
			}
		}
		return nil
	})
	var head ledger.BlockRef
	for k, i := range which {
		l := n.ledger(i)
		if err := l.Verify(chtest.Ctx(n.t), nil); err != nil {
			n.t.Fatalf("verify on validator %d: %v", i, err)
		}
		ref, _, err := l.Head()
		if err != nil {
			n.t.Fatal(err)
		}
		if k == 0 {
			head = ref
		} else if ref != head {
			n.t.Fatalf("validator %d head %d %x, validator %d head %d %x", which[0], head.Height, head.Hash[:4], i, ref.Height, ref.Hash[:4])
		}
	}
	return height, hash
}

// joins returns how many join events of id validator i's ledger holds.
func (n *testNet) joins(i int, id string) int {
	n.t.Helper()
	var count int
	err := n.ledger(i).Blocks(0, func(b ledger.Block) error {
		for _, ev := range b.Events {
			if ev.Type == ledger.EventJoin && ev.Device == id {
				count++
			}
		}
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return count
}
