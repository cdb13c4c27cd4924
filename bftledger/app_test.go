package bftledger_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/internal/echo"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

const chainID = "iotguard-test"

// genesisTime is the consensus time of the test chains; block i is i seconds later.
var genesisTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// chainApp is an App driven block by block through its ABCI methods, as
// CometBFT drives it, with the real CH keys of two clusters.
type chainApp struct {
	t       *testing.T
	app     *bftledger.App
	path    string
	height  int64
	keys    map[string]*keysvc.Service
	appHash []byte // from InitChain: the chain's, for good
}

func clusterKeys(t *testing.T, ids ...string) (map[string]*keysvc.Service, []byte) {
	t.Helper()
	keys := map[string]*keysvc.Service{}
	var s bftledger.AppState
	for _, id := range ids {
		k, err := keysvc.Open(t.TempDir(), id)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		s.Clusters = append(s.Clusters, bftledger.ClusterEntry{ID: id, Key: k.COSEKey()})
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return keys, b
}

func newChainApp(t *testing.T, keys map[string]*keysvc.Service, appState []byte) *chainApp {
	t.Helper()
	path := filepath.Join(t.TempDir(), bftledger.StoreFile)
	app, err := bftledger.NewApp(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	res, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, Time: genesisTime, AppStateBytes: appState})
	if err != nil {
		t.Fatal(err)
	}
	return &chainApp{t: t, app: app, path: path, keys: keys, appHash: res.AppHash}
}

// now is the consensus time of the next block.
func (c *chainApp) now() time.Time { return genesisTime.Add(time.Duration(c.height+1) * time.Second) }

// tx returns ev signed by cluster's CH key (signer, which may be another
// cluster's key to forge).
func (c *chainApp) tx(cluster, signer string, ev ledger.Event) []byte {
	c.t.Helper()
	if ev.Type == ledger.EventJoin && len(ev.Request) == 1 { // join's placeholder: the device asked this cluster
		ev = evidence(ev, cluster)
	}
	t := &bftledger.Tx{Cluster: cluster, Nonce: make([]byte, bftledger.NonceLen), Event: ev}
	rand.Read(t.Nonce)
	msg, err := t.SignedBytes(chainID)
	if err != nil {
		c.t.Fatal(err)
	}
	if t.Sig, err = c.keys[signer].Sign(msg); err != nil {
		c.t.Fatal(err)
	}
	b, err := t.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// block finalizes and commits one block of txs at the consensus time now()
// and returns the result codes and the state hash every result carries. The
// app hash must stay the chain's.
func (c *chainApp) block(txs ...[]byte) ([]uint32, []byte) {
	c.t.Helper()
	c.height++
	res, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: c.height, Time: genesisTime.Add(time.Duration(c.height) * time.Second), Txs: txs})
	if err != nil {
		c.t.Fatalf("block %d: %v", c.height, err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatalf("commit %d: %v", c.height, err)
	}
	if !bytes.Equal(res.AppHash, c.appHash) {
		c.t.Fatalf("block %d: app hash %x, want the chain's %x", c.height, res.AppHash, c.appHash)
	}
	codes := make([]uint32, len(res.TxResults))
	var state []byte
	for i, r := range res.TxResults {
		codes[i] = r.Code
		if len(r.Data) != 32 || (i > 0 && !bytes.Equal(r.Data, state)) {
			c.t.Fatalf("block %d tx %d: result data %x, want the state hash of the block", c.height, i, r.Data)
		}
		state = r.Data
	}
	return codes, state
}

// want applies one block of txs and checks each result code.
func (c *chainApp) want(codes []uint32, txs ...[]byte) {
	c.t.Helper()
	got, _ := c.block(txs...)
	for i := range codes {
		if got[i] != codes[i] {
			c.t.Fatalf("block %d tx %d: code %d, want %d", c.height, i, got[i], codes[i])
		}
	}
}

// deviceKeys holds one P-256 key per key byte of join.
var deviceKeys sync.Map // byte → func() *ecdsa.PrivateKey

func deviceKey(key byte) *ecdsa.PrivateKey {
	k, _ := deviceKeys.LoadOrStore(key, sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}))
	return k.(func() *ecdsa.PrivateKey)()
}

// join returns a join of id with the device key named by key; chainApp.tx
// adds its evidence.
func join(id string, key byte, at time.Time) ledger.Event {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	cose, err := wire.EncodePublicKey(&deviceKey(key).PublicKey)
	if err != nil {
		panic(err)
	}
	return ledger.Event{Type: ledger.EventJoin, Device: id, Time: at.UnixMilli(), Key: cose,
		DeviceNonce: nonce, CHNonce: nonce, Expires: at.Add(time.Hour).Unix(), Request: []byte{key}}
}

// echoes makes the echoes the test devices sign, as a CH would.
var echoes = echo.New()

// evidence returns join ev with its evidence: the device's join request for
// cluster, signed by the key ev.Request names, over an echo its CH made at
// the event's time and height ev.FreshAt.
func evidence(ev ledger.Event, cluster string) ledger.Event {
	priv := deviceKey(ev.Request[0])
	e := echoes.Echo("192.0.2.1:5683", time.UnixMilli(ev.Time), ev.FreshAt)
	req, err := wire.Marshal(&wire.JoinRequest{Cluster: cluster, ID: ev.Device, Key: ev.Key, Nonce: ev.DeviceNonce, Echo: e})
	if err != nil {
		panic(err)
	}
	if ev.Request, err = wire.Sign1(priv, []byte(ev.Device), wire.AADJoinRequest, req); err != nil {
		panic(err)
	}
	return ev
}

func event(typ ledger.EventType, id, peer string, at time.Time) ledger.Event {
	return ledger.Event{Type: typ, Device: id, Peer: peer, Time: at.UnixMilli()}
}

func TestAppClusterWritesOnlyItsOwnDevices(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	a1 := join("a1", 0xa1, c.now())
	c.want([]uint32{0, 0}, c.tx("cluster-a", "cluster-a", a1), c.tx("cluster-b", "cluster-b", join("b1", 0xb1, c.now())))

	for _, tc := range []struct {
		name string
		ev   ledger.Event
		code uint32
	}{
		{"leave of another cluster's member", event(ledger.EventLeave, "a1", "", c.now()), bftledger.CodeOtherCluster},
		{"revoke of another cluster's member", event(ledger.EventRevoke, "a1", "", c.now()), bftledger.CodeOtherCluster},
		{"session with another cluster's member", event(ledger.EventSession, "b1", "a1", c.now()), bftledger.CodeOtherCluster},
		{"join of a current member of another cluster", join("a1", 0xa1, c.now()), bftledger.CodeOtherCluster},
		{"verify warning asked by another cluster's member", event(ledger.EventVerifyWarning, "a1", "x", c.now()), bftledger.CodeOtherCluster},
		{"rejoin with another key", join("b1", 0xee, c.now()), bftledger.CodeConflict},
		{"leave of an unknown device", event(ledger.EventLeave, "nobody", "", c.now()), bftledger.CodeUnknownDevice},
		{"key rotation", rotateEvent(t, keys["cluster-b"], c.now()), bftledger.CodeInvalidEvent},
		{"session batch in another cluster's name", sessionBatch("cluster-a", c.now()), bftledger.CodeOtherCluster},
		{"grants pruned in another cluster's name", ledger.GrantsPrunedEvent("cluster-a", 2, c.now()), bftledger.CodeOtherCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.want([]uint32{tc.code}, c.tx("cluster-b", "cluster-b", tc.ev))
		})
	}
	d := c.device("a1")
	if d.Cluster != "cluster-a" || d.Status != membership.Member {
		t.Fatalf("a1 after refused writes of cluster-b: %+v", d)
	}
	// Its own session batch is accepted: it commits to grants by hash and
	// changes no device.
	c.want([]uint32{0}, c.tx("cluster-b", "cluster-b", sessionBatch("cluster-b", c.now())))
	// So is its own prune of its grant log's records.
	c.want([]uint32{0}, c.tx("cluster-b", "cluster-b", ledger.GrantsPrunedEvent("cluster-b", 2, c.now())))

	// a1 leaves cluster-a; then cluster-b may take it in.
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", event(ledger.EventLeave, "a1", "", c.now())))
	c.want([]uint32{0}, c.tx("cluster-b", "cluster-b", c.signedNow(join("a1", 0xa1, c.now()))))
	if d := c.device("a1"); d.Cluster != "cluster-b" || d.Status != membership.Member {
		t.Fatalf("a1 after moving: %+v", d)
	}
	c.want([]uint32{bftledger.CodeOtherCluster}, c.tx("cluster-a", "cluster-a", event(ledger.EventRevoke, "a1", "", c.now())))
}

// signedNow returns join ev as signed over an echo its CH made after the
// device's latest event: fresh.
func (c *chainApp) signedNow(ev ledger.Event) ledger.Event {
	c.t.Helper()
	ev.FreshAt = c.device(ev.Device).Updated.Height
	return ev
}

func (c *chainApp) device(id string) ledger.Device {
	c.t.Helper()
	d, ok, err := bftledger.AppDevice(c.app, id)
	if err != nil || !ok {
		c.t.Fatalf("record of %s: %v %v", id, ok, err)
	}
	return d
}

// TestAppRefusesReplayedJoinOfAnotherCluster: the ledger keeps every
// device's signed join request, naming the cluster it asked. A device that
// joined cluster-b, then cluster-a, then left, must not be taken back into
// cluster-b by cluster-b's CH (or a thief of its key) replaying the old
// request with a freshness it claims: a join records the height of the echo
// its device signed, never above the ledger's head, and its event time is
// within the echo's lifetime after the echo's. Before, cluster-b could, and
// cluster-a's next join of the device was refused (member of cluster-b).
func TestAppRefusesReplayedJoinOfAnotherCluster(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	old := evidence(join("x", 0x77, c.now()), "cluster-b")
	c.want([]uint32{0}, c.tx("cluster-b", "cluster-b", old))
	c.want([]uint32{0}, c.tx("cluster-b", "cluster-b", event(ledger.EventLeave, "x", "", c.now())))
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", c.signedNow(join("x", 0x77, c.now()))))
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", event(ledger.EventLeave, "x", "", c.now())))
	left := c.device("x")
	head := left.Updated.Height // x's leave is the newest ledger block

	replay := func(freshAt uint64) ledger.Event {
		ev := old
		ev.Time, ev.FreshAt, ev.CHNonce = c.now().UnixMilli(), freshAt, []byte("another CH nonce")
		ev.Expires = c.now().Add(24 * time.Hour).Unix()
		return ev
	}
	// signedAt is a fresh join of y whose device signed an echo made at
	// echoAt, recorded at the next block's time.
	signedAt := func(echoAt time.Time) ledger.Event {
		ev := evidence(join("y", 0x78, echoAt), "cluster-a")
		ev.Time = c.now().UnixMilli()
		return ev
	}
	noEcho := join("y", 0x78, c.now())
	req, err := wire.Marshal(&wire.JoinRequest{Cluster: "cluster-a", ID: "y", Key: noEcho.Key, Nonce: noEcho.DeviceNonce})
	if err != nil {
		t.Fatal(err)
	}
	if noEcho.Request, err = wire.Sign1(deviceKey(0x78), []byte("y"), wire.AADJoinRequest, req); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cluster string
		ev      ledger.Event
		code    uint32
	}{
		{"old request with its echo's height", "cluster-b", replay(0), bftledger.CodeStaleJoin},
		{"old request claiming the head's height", "cluster-b", replay(head), bftledger.CodeInvalidEvent},
		{"old request claiming a height above the head", "cluster-b", replay(head + 5), bftledger.CodeInvalidEvent},
		{"request without an echo", "cluster-a", noEcho, bftledger.CodeInvalidEvent},
		{"echo older than its lifetime", "cluster-a", signedAt(c.now().Add(-2 * time.Minute)), bftledger.CodeInvalidEvent},
		{"echo made after the event", "cluster-a", signedAt(c.now().Add(2 * time.Second)), bftledger.CodeInvalidEvent},
	} {
		if codes, _ := c.block(c.tx(tc.cluster, tc.cluster, tc.ev)); codes[0] != tc.code {
			t.Errorf("%s: code %d, want %d", tc.name, codes[0], tc.code)
		}
	}
	if d := c.device("x"); d.Cluster != "cluster-a" || d.Status != membership.Left || d.Updated != left.Updated {
		t.Fatalf("x after the replays: %+v", d)
	}
	if _, ok, err := bftledger.AppDevice(c.app, "y"); ok || err != nil {
		t.Fatalf("y recorded by a refused join: %v %v", ok, err)
	}
	// x's own CH takes it back with a join x signs now.
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", c.signedNow(join("x", 0x77, c.now()))))
	if d := c.device("x"); d.Cluster != "cluster-a" || d.Status != membership.Member {
		t.Fatalf("x after rejoining cluster-a: %+v", d)
	}
}

func TestAppRefusesForgedReplayedAndStaleTransactions(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", join("a1", 0xa1, c.now())))

	leave := c.tx("cluster-a", "cluster-a", event(ledger.EventLeave, "a1", "", c.now()))
	c.want([]uint32{0, bftledger.CodeReplay}, leave, leave) // twice in one block
	signedBeforeLeave := join("a1", 0xa1, c.now())          // over an echo from before the leave's block
	c.want([]uint32{bftledger.CodeStaleJoin}, c.tx("cluster-a", "cluster-a", signedBeforeLeave))
	c.want([]uint32{0}, c.tx("cluster-a", "cluster-a", c.signedNow(join("a1", 0xa1, c.now()))))
	c.want([]uint32{bftledger.CodeReplay}, leave) // a later block: a1 is a member again, the old leave stays spent

	stale := c.tx("cluster-a", "cluster-a", event(ledger.EventLeave, "a1", "", c.now().Add(-time.Hour)))
	c.want([]uint32{bftledger.CodeStale}, stale)
	c.want([]uint32{bftledger.CodeReplay}, stale) // refused transactions are spent too

	forged := c.tx("cluster-a", "cluster-b", event(ledger.EventRevoke, "a1", "", c.now()))
	tampered := c.tx("cluster-a", "cluster-a", event(ledger.EventLeave, "a1", "", c.now()))
	tampered[len(tampered)-10] ^= 1 // inside the signature, the last field
	c.want([]uint32{bftledger.CodeBadSignature, bftledger.CodeMalformed, bftledger.CodeUnregistered, bftledger.CodeMalformed},
		forged, []byte{0xa0}, c.tx("cluster-z", "cluster-a", event(ledger.EventLeave, "a1", "", c.now())), append(bytes.Clone(leave), 0))
	c.want([]uint32{bftledger.CodeBadSignature}, tampered)
	if d := c.device("a1"); d.Status != membership.Member {
		t.Fatalf("a1 after refused transactions: %v", d.Status)
	}
}

func TestAppIsDeterministicAndRestartable(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	x, y := newChainApp(t, keys, state), newChainApp(t, keys, state)
	var blocks [][][]byte
	for i := range 5 {
		at := genesisTime.Add(time.Duration(i+1) * time.Second)
		blocks = append(blocks, [][]byte{
			x.tx("cluster-a", "cluster-a", join("a"+string(rune('0'+i)), byte(i), at)),
			x.tx("cluster-b", "cluster-b", join("b"+string(rune('0'+i)), byte(0x10+i), at)),
		})
	}
	var last []byte
	for _, txs := range blocks {
		_, hx := x.block(txs...)
		_, hy := y.block(txs...)
		if !bytes.Equal(hx, hy) {
			t.Fatalf("block %d: state hashes differ", x.height)
		}
		if bytes.Equal(hx, last) {
			t.Fatalf("block %d: state hash did not change", x.height)
		}
		last = hx
	}
	if codes, h := x.block(); len(codes) != 0 || h != nil {
		t.Fatalf("an empty block has results %v", codes)
	}
	// Restart: Info reports where the app stands, so CometBFT replays nothing.
	if err := x.app.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := bftledger.NewApp(x.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	info, err := again.Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LastBlockHeight != x.height || !bytes.Equal(info.LastBlockAppHash, x.appHash) {
		t.Fatalf("after restart: height %d app hash %x, want %d %x", info.LastBlockHeight, info.LastBlockAppHash, x.height, x.appHash)
	}
}

func TestAppProposals(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	good := c.tx("cluster-a", "cluster-a", join("a1", 0xa1, c.now()))
	forged := c.tx("cluster-a", "cluster-b", join("a2", 0xa2, c.now()))
	before := time.Now()
	prep, err := c.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{Txs: [][]byte{forged, good, {1}}, MaxTxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(prep.Txs) != 2 || !bytes.Equal(prep.Txs[1], good) {
		t.Fatalf("PrepareProposal kept %d transactions, want the proposal time and the valid one", len(prep.Txs))
	}
	if ms, ok := bftledger.DecodeProposalTime(prep.Txs[0]); !ok || ms < before.UnixMilli() || ms > time.Now().UnixMilli() {
		t.Fatalf("the proposal does not open with the proposer's clock: %x", prep.Txs[0])
	}
	if none, err := c.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{Txs: [][]byte{forged}, MaxTxBytes: 1 << 20}); err != nil || len(none.Txs) != 0 {
		t.Fatalf("PrepareProposal without a valid transaction: %d transactions, %v; want none", len(none.Txs), err)
	}
	now := bftledger.ProposalTime(time.Now())
	stamped := func(txs ...[]byte) [][]byte { return append([][]byte{now}, txs...) }
	many := make([][]byte, bftledger.MaxBlockTxs+1)
	for i := range many {
		many[i] = good
	}
	for _, tc := range []struct {
		name string
		txs  [][]byte
		want abci.ResponseProcessProposal_ProposalStatus
	}{
		{"honest", stamped(good), abci.ResponseProcessProposal_ACCEPT},
		{"empty", nil, abci.ResponseProcessProposal_ACCEPT},
		{"no proposal time", [][]byte{good}, abci.ResponseProcessProposal_REJECT},
		{"proposal time not first", [][]byte{good, now}, abci.ResponseProcessProposal_REJECT},
		{"two proposal times", stamped(now, good), abci.ResponseProcessProposal_REJECT},
		{"proposal time ahead of this clock", [][]byte{bftledger.ProposalTime(time.Now().Add(bftledger.MaxProposalAhead + time.Minute)), good}, abci.ResponseProcessProposal_REJECT},
		{"proposal time an hour old (the decided time is bounded below)", [][]byte{bftledger.ProposalTime(time.Now().Add(-time.Hour)), good}, abci.ResponseProcessProposal_ACCEPT},
		{"forged signature", stamped(good, forged), abci.ResponseProcessProposal_REJECT},
		{"garbage", stamped([]byte{0xff}), abci.ResponseProcessProposal_REJECT},
		{"more transactions than a block may carry", stamped(many...), abci.ResponseProcessProposal_REJECT},
		{"just enough", stamped(many[:bftledger.MaxBlockTxs]...), abci.ResponseProcessProposal_ACCEPT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{Txs: tc.txs, Height: 1})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want {
				t.Fatalf("status %v, want %v", res.Status, tc.want)
			}
		})
	}
}

func FuzzDecodeTx(f *testing.F) {
	f.Add([]byte{0xa0})
	t := &bftledger.Tx{Cluster: "c", Nonce: make([]byte, bftledger.NonceLen), Event: ledger.Event{Type: ledger.EventLeave, Device: "d"}, Sig: []byte{1}}
	b, _ := t.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := bftledger.DecodeTx(b)
		if err != nil {
			return
		}
		again, err := tx.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded transaction does not re-encode to its bytes")
		}
	})
}

// TestAppSplitsLargeBlocks: a CometBFT block with more events than a ledger
// block holds makes consecutive, linked ledger blocks, and every record
// points at the ledger block that holds its event.
func TestAppSplitsLargeBlocks(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	const n = ledger.MaxBatchLimit + 36
	txs := make([][]byte, n)
	for i := range txs {
		txs[i] = c.tx("cluster-a", "cluster-a", join("d"+strconv.Itoa(i), byte(i), c.now()))
	}
	codes, _ := c.block(txs...)
	for i, code := range codes {
		if code != bftledger.CodeOK {
			t.Fatalf("tx %d: code %d", i, code)
		}
	}
	where := map[string]ledger.BlockRef{}
	var prev [32]byte
	var sizes []int
	err := bftledger.AppBlocks(c.app, func(b ledger.Block) error {
		h, err := b.Header.Hash()
		if err != nil {
			return err
		}
		if b.Header.Prev != prev {
			t.Errorf("ledger block %d does not link to its predecessor", b.Header.Height)
		}
		prev = h
		if b.Header.Height > 0 {
			sizes = append(sizes, len(b.Events))
		}
		for _, ev := range b.Events {
			where[ev.Device] = ledger.BlockRef{Height: b.Header.Height, Hash: h}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 2 || sizes[0] != ledger.MaxBatchLimit || sizes[1] != 36 {
		t.Fatalf("ledger block sizes %v, want [%d 36]", sizes, ledger.MaxBatchLimit)
	}
	for i := range n {
		id := "d" + strconv.Itoa(i)
		if d, w := c.device(id), where[id]; d.Joined != w || d.Updated != w {
			t.Fatalf("%s: joined %d %x, its event is in %d %x", id, d.Joined.Height, d.Joined.Hash[:4], w.Height, w.Hash[:4])
		}
	}
}

// TestAppChecksJoinEvidence: validators verify the device's own signature on
// every join: a CH cannot submit a join its device did not sign, nor a join
// that device asked of another cluster.
func TestAppChecksJoinEvidence(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	forged := evidence(join("d1", 1, c.now()), "cluster-a")
	signed, err := wire.ParseSign1(forged.Request)
	if err != nil {
		t.Fatal(err)
	}
	if forged.Request, err = wire.Sign1(deviceKey(2), []byte("d1"), wire.AADJoinRequest, signed.Payload); err != nil {
		t.Fatal(err)
	}
	otherCluster := evidence(join("d2", 3, c.now()), "cluster-b")
	c.want([]uint32{bftledger.CodeInvalidEvent, bftledger.CodeInvalidEvent, bftledger.CodeOK},
		c.tx("cluster-a", "cluster-a", forged), c.tx("cluster-a", "cluster-a", otherCluster),
		c.tx("cluster-a", "cluster-a", join("d3", 4, c.now())))
}

// rotateEvent is a rotate event of cluster-b to a fresh key, signed by its
// registered key: well formed, and still refused on the shared ledger.
func rotateEvent(t *testing.T, keys *keysvc.Service, now time.Time) ledger.Event {
	t.Helper()
	rotation, _, err := keys.PrepareRotation(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Event{Type: ledger.EventRotate, Device: "cluster-b", Time: now.UnixMilli(), Request: rotation}
}

// TestAppBlockTime: a block is judged and stamped at its proposer's time
// (its first transaction), not at CometBFT's time, which after a quiet hour
// is the commit time of the block before; never earlier than CometBFT's time,
// though, nor than the ledger block before.
func TestAppBlockTime(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	lastBlockTime := func() int64 {
		var at int64
		if err := bftledger.AppBlocks(c.app, func(b ledger.Block) error { at = b.Header.Time; return nil }); err != nil {
			t.Fatal(err)
		}
		return at
	}

	// A quiet hour: CometBFT's time of the next block is an hour behind the
	// clocks of the CH and the proposer. Without a proposal time the join is
	// refused as stale; with one it is applied and stamped at that time.
	later := c.now().Add(time.Hour)
	c.want([]uint32{bftledger.CodeStale}, c.tx("cluster-a", "cluster-a", join("a1", 0xa1, later)))
	c.want([]uint32{bftledger.CodeOK, bftledger.CodeOK},
		bftledger.ProposalTime(later.Add(200*time.Millisecond)), c.tx("cluster-a", "cluster-a", join("a2", 0xa2, later)))
	if got, want := lastBlockTime(), later.Add(200*time.Millisecond).UnixMilli(); got != want {
		t.Fatalf("ledger block stamped %d, want the proposal time %d", got, want)
	}

	// A proposer that backdates gets no earlier than the ledger block before
	// (the ledger's times never go back) ...
	c.want([]uint32{bftledger.CodeOK, bftledger.CodeOK},
		bftledger.ProposalTime(later.Add(-time.Minute)), c.tx("cluster-a", "cluster-a", join("a3", 0xa3, later.Add(time.Second))))
	if got, want := lastBlockTime(), later.Add(200*time.Millisecond).UnixMilli(); got != want {
		t.Fatalf("backdated block stamped %d, want the block before's %d", got, want)
	}
	// ... nor than CometBFT's time.
	c2 := newChainApp(t, keys, state)
	c2.want([]uint32{bftledger.CodeOK, bftledger.CodeOK},
		bftledger.ProposalTime(c2.now().Add(-time.Minute)), c2.tx("cluster-a", "cluster-a", join("a1", 0xa1, c2.now())))
	var at int64
	if err := bftledger.AppBlocks(c2.app, func(b ledger.Block) error { at = b.Header.Time; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := genesisTime.Add(time.Second).UnixMilli(); at != want {
		t.Fatalf("backdated block stamped %d, want CometBFT's time %d", at, want)
	}
}

// sessionBatch is a session-batch event of cluster (its grants are not on
// the ledger: a count and a Merkle root commit to them).
func sessionBatch(cluster string, now time.Time) ledger.Event {
	return ledger.GrantBatch{Seq: 1, Count: 2, Root: [32]byte{0xba}, TimeMS: now.UnixMilli()}.Event(cluster)
}

// TestCheckTxBoundsEachClustersShare: a registered CH that floods its
// validators with valid transactions fills only its own share of the
// mempool (MaxPendingTxs); the next is refused CodeTooMany, and another
// cluster's still enters. After a Commit the mempool's recheck counts what
// is left anew. Before, CheckTx admitted all of them, and a full mempool
// refused the other clusters' appends.
func TestCheckTxBoundsEachClustersShare(t *testing.T) {
	keys, state := clusterKeys(t, "cluster-a", "cluster-b")
	c := newChainApp(t, keys, state)
	check := func(typ abci.CheckTxType, tx []byte) uint32 {
		t.Helper()
		res, err := c.app.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: tx, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		return res.Code
	}
	flood := make([][]byte, bftledger.MaxPendingTxs+1)
	for i := range flood {
		flood[i] = c.tx("cluster-a", "cluster-a", sessionBatch("cluster-a", time.Now()))
	}
	for i, tx := range flood[:bftledger.MaxPendingTxs] {
		if code := check(abci.CheckTxType_New, tx); code != bftledger.CodeOK {
			t.Fatalf("cluster-a's transaction %d: code %d, want admitted", i, code)
		}
	}
	if code := check(abci.CheckTxType_New, flood[bftledger.MaxPendingTxs]); code != bftledger.CodeTooMany {
		t.Fatalf("cluster-a's transaction past its share: code %d, want %d", code, bftledger.CodeTooMany)
	}
	if code := check(abci.CheckTxType_New, c.tx("cluster-b", "cluster-b", sessionBatch("cluster-b", time.Now()))); code != bftledger.CodeOK {
		t.Fatalf("cluster-b's transaction beside the flood: code %d, want admitted", code)
	}
	// A block took the first half; the recheck admits the rest again, and
	// there is room for as many new ones as the block took.
	half := bftledger.MaxPendingTxs / 2
	c.block(flood[:half]...)
	for i, tx := range flood[half:bftledger.MaxPendingTxs] {
		if code := check(abci.CheckTxType_Recheck, tx); code != bftledger.CodeOK {
			t.Fatalf("recheck of cluster-a's transaction %d: code %d", half+i, code)
		}
	}
	if code := check(abci.CheckTxType_New, flood[bftledger.MaxPendingTxs]); code != bftledger.CodeOK {
		t.Fatalf("cluster-a's transaction once a block took some: code %d, want admitted", code)
	}
}
