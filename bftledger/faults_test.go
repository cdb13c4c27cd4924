package bftledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// TestJoinAfterQuietSpell: a network that has been idle for longer than the
// genesis max_event_skew_ms still takes the next join (CometBFT's own time of
// that block is the commit time of the block before, out of skew; the block
// is judged at its proposer's time), and every ledger block is stamped no
// earlier than the events it holds and within the skew of them. Each join
// takes one CometBFT height: no empty block follows a commit.
func TestJoinAfterQuietSpell(t *testing.T) {
	const skew = 5 * time.Second // as short as a loaded machine allows: a join waits for its block within it
	n := startNetWith(t, []string{"cluster-a"}, netConfig{maxSkewMS: skew.Milliseconds()})
	chA := n.ch("cluster-a")
	fleetJoined(t, chA, "a1")
	time.Sleep(skew + time.Second) // the quiet spell: no block at all
	fleetJoined(t, chA, "a2")
	time.Sleep(skew + time.Second)
	fleetJoined(t, chA, "a3")
	height, _ := n.agree(0, 1, 2, 3)

	var blocks int
	err := n.ledger(0).Blocks(1, func(b ledger.Block) error {
		blocks++
		for _, ev := range b.Events {
			if d := b.Header.Time - ev.Time; d < 0 || d > skew.Milliseconds() {
				t.Errorf("ledger block %d is stamped %d ms after the %s of %s it holds", b.Header.Height, d, ev.Type, ev.Device)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if blocks != 3 {
		t.Fatalf("%d ledger blocks for 3 joins", blocks)
	}
	// Height 1 is CometBFT's first block (made at once, to carry the
	// genesis state; the first join may be in it); then one height per
	// join: no empty block follows one.
	bs := n.ledger(0).Node().BlockStore()
	for h := int64(2); h <= height; h++ {
		if b := bs.LoadBlock(h); b == nil || len(b.Txs) == 0 {
			t.Errorf("CometBFT block %d carries no transaction", h)
		}
	}
	if height > 1+3 {
		t.Fatalf("CometBFT height %d after 3 joins: a commit took more than one height", height)
	}
}

// rawJoin is a device's signed join, sent as raw CoAP so that a test sees
// every answer: code, diagnostic, Max-Age.
type rawJoin struct {
	st   *device.State
	conn *client.Conn
	req  wire.JoinRequest
	body []byte
}

// newRawJoin signs a join of id for ch, over the echo of ch's /cluster.
func newRawJoin(t *testing.T, ch *clusterhead.CH, id string) *rawJoin {
	t.Helper()
	j := &rawJoin{}
	j.st, j.req = chtest.JoinRequest(t, ch.Core.Config().ID, id)
	j.conn = chtest.Raw(t, ch)
	resp, err := j.conn.Get(chtest.Ctx(t), "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	if j.req.Echo, err = resp.Echo(); err != nil {
		t.Fatalf("GET /cluster carries no echo: %v", err)
	}
	j.req.Credential = credential(t, j.st)
	j.body = chtest.SignJoin(t, j.st, id, &j.req)
	return j
}

type rawAnswer struct {
	code   codes.Code
	diag   string
	maxAge uint32
	body   []byte
}

// send posts the signed join as it is.
func (j *rawJoin) send(t *testing.T) rawAnswer {
	t.Helper()
	resp, err := j.conn.Post(chtest.Ctx(t), "/join", message.AppCoseSign1, bytes.NewReader(j.body))
	if err != nil {
		t.Fatalf("POST /join of %s: %v", j.st.ID, err)
	}
	a := rawAnswer{code: resp.Code()}
	if resp.Body() != nil {
		a.body, _ = resp.ReadBody()
		a.diag = string(a.body)
	}
	a.maxAge, _ = resp.GetOptionUint32(message.MaxAge)
	return a
}

// answered checks a successful answer to the join: it names the join's
// nonce and the block that the ledger of validator 0 recorded.
func (j *rawJoin) answered(t *testing.T, n *testNet, a rawAnswer) {
	t.Helper()
	if a.code != codes.Created && a.code != codes.Changed {
		t.Fatalf("join of %s: %v %q, want it answered", j.st.ID, a.code, a.diag)
	}
	s, err := wire.ParseSign1(a.body)
	if err != nil {
		t.Fatal(err)
	}
	var resp wire.JoinResponse
	if err := wire.Decode(s.Payload, &resp); err != nil {
		t.Fatal(err)
	}
	d, err := n.ledger(0).Lookup(j.st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.DeviceNonce, j.req.Nonce) || !bytes.Equal(resp.CHNonce, d.CHNonce) || resp.Height != d.Joined.Height {
		t.Fatalf("answer to %s names nonce %x, CH nonce %x, block %d; the ledger recorded %x, %x, %d",
			j.st.ID, resp.DeviceNonce, resp.CHNonce, resp.Height, d.DeviceNonce, d.CHNonce, d.Joined.Height)
	}
}

// waitMempool waits until validator i's mempool holds at least k
// transactions.
func (n *testNet) waitMempool(i, k int) {
	n.t.Helper()
	poll(n.t, fmt.Sprintf("%d transactions in validator %d's mempool", k, i), 30*time.Second, func() error {
		if got := n.ledger(i).Node().Mempool().Size(); got < k {
			return fmt.Errorf("%d", got)
		}
		return nil
	})
}

// TestUndecidedJoin: with two of four validators down nothing commits. A
// join is then answered 5.03 "outcome not known yet" with a Max-Age, not
// 5.00. The Go device, answered so, resends the same join until the
// validators return and takes the recorded answer; a device that resends its
// very same signed join after they returned gets the join the ledger
// recorded. Each is recorded once, and every validator agrees.
func TestUndecidedJoin(t *testing.T) {
	n := startNetWith(t, []string{"cluster-a", "cluster-b"}, netConfig{requestTimeout: time.Second})
	chA := n.ch("cluster-a")
	chtest.Joined(t, chA, "a0")
	n.stop(2)
	n.stop(3)

	raw := newRawJoin(t, chA, "a1")
	a := raw.send(t)
	if a.code != codes.ServiceUnavailable || a.diag != "outcome not known yet" || a.maxAge == 0 {
		t.Fatalf("join without a quorum: %v %q Max-Age %d, want 5.03 outcome not known yet with a Max-Age", a.code, a.diag, a.maxAge)
	}

	st, err := fleetState("a2")
	if err != nil {
		t.Fatal(err)
	}
	d := chtest.Dial(t, chA, st)
	joined := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
		for try := 0; try < 3 && errors.Is(err, device.ErrOutcomeUnknown); try++ {
			_, err = d.Join(ctx, chtest.Near.Lat, chtest.Near.Lon) // the same join again: its nonce is pending
		}
		joined <- err
	}()
	// a1's join, a2's and a2's retry (each submission its own transaction).
	n.waitMempool(0, 3)
	n.start(2)
	n.start(3)
	if err := <-joined; err != nil { // bounded by its context
		t.Fatalf("device a2 whose join was undecided: %v", err)
	}
	raw.answered(t, n, raw.send(t))

	n.agree(0, 1, 2, 3)
	for i := range validators {
		for _, id := range []string{"a1", "a2"} {
			if c := n.joins(i, id); c != 1 {
				t.Fatalf("validator %d holds %d joins of %s, want 1", i, c, id)
			}
		}
	}
	if rec, err := n.ledger(0).Lookup("a2"); err != nil || !bytes.Equal(rec.CHNonce, d.Membership().CHNonce) {
		t.Fatalf("a2 keeps a membership the ledger did not record: %v", err)
	}
}

// TestCHRestartWhileCommitPending: a join is submitted while two validators
// are down; the CH (and its validator) restarts before the join is decided,
// then the validators return. The device's next join — the same nonce, kept
// as pending, signed over the restarted CH's echo — is answered with the
// join the ledger recorded, recorded once.
func TestCHRestartWhileCommitPending(t *testing.T) {
	n := startNetWith(t, []string{"cluster-a", "cluster-b"}, netConfig{requestTimeout: time.Second})
	chtest.Joined(t, n.ch("cluster-a"), "a0")
	n.stop(2)
	n.stop(3)

	st, err := fleetState("a1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second) // one wait of the CH, at most one retry
	defer cancel()
	if _, err := chtest.Dial(t, n.ch("cluster-a"), st).Join(ctx, chtest.Near.Lat, chtest.Near.Lon); !errors.Is(err, device.ErrOutcomeUnknown) {
		t.Fatalf("join without a quorum: %v, want ErrOutcomeUnknown", err)
	}
	pending := st.PendingJoin
	if pending == nil {
		t.Fatal("the undecided join is not kept pending")
	}
	n.waitMempool(1, 1) // validator 1 holds the transaction too

	n.stop(0) // CH A with its validator
	n.start(0)
	n.start(2)
	n.start(3)
	d := chtest.Dial(t, n.ch("cluster-a"), st)
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatalf("join again after the restart: %v", err)
	}
	if m := d.Membership(); !bytes.Equal(m.DeviceNonce, pending.Nonce) {
		t.Fatalf("the device joined with nonce %x, not its pending %x", m.DeviceNonce, pending.Nonce)
	}
	n.agree(0, 1, 2, 3)
	for i := range validators {
		if c := n.joins(i, "a1"); c != 1 {
			t.Fatalf("validator %d holds %d joins of a1, want 1", i, c)
		}
	}
}

// TestValidatorKilledMidCommit: devices of two clusters join concurrently
// while a validator is stopped in the middle and started again. Every
// acknowledged join is on every validator, once, and they all agree.
func TestValidatorKilledMidCommit(t *testing.T) {
	n := startNet(t, []string{"cluster-a", "cluster-b"}, nil)
	const perCluster = 6
	var wg sync.WaitGroup
	acked := make(chan string, 2*perCluster)
	errs := make(chan error, 2*perCluster)
	first, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	for _, c := range []string{"cluster-a", "cluster-b"} {
		ch := n.ch(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perCluster {
				id := fmt.Sprintf("%s-%d", c, k)
				st, err := fleetState(id)
				if err != nil {
					errs <- err
					return
				}
				d, err := device.Dial(ch.Addr(), st)
				if err != nil {
					errs <- err
					return
				}
				_, err = d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
				d.Close()
				if err != nil {
					errs <- fmt.Errorf("join %s: %w", id, err)
					return
				}
				acked <- id
				once.Do(func() { close(first) })
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select { // bounded: every join is bounded by chtest.Ctx
	case <-first:
	case <-done:
	}
	n.stop(3) // mid-way: joins are in flight
	n.start(3)
	<-done
	close(acked)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n.agree(0, 1, 2, 3)
	var count int
	for id := range acked {
		count++
		for i := range validators {
			if c := n.joins(i, id); c != 1 {
				t.Fatalf("validator %d holds %d joins of acknowledged %s, want 1", i, c, id)
			}
		}
	}
	if count != 2*perCluster {
		t.Fatalf("%d joins acknowledged, want %d", count, 2*perCluster)
	}
}

// TestGrantBatchAfterLongOutage: sessions granted while two validators are
// down put a batch of audit records whose ledger append ends uncertain; the
// validators stay away for longer than the genesis max_event_skew_ms, so
// that transaction can never commit. When they return, that batch and the
// next reach the ledger, the grant log checks out against the chain, and the
// CH restarts. Before, the batch was appended again with the time it was
// written, refused as stale for good: every later batch queued behind it, and
// the CH refused to start (its recovery of pending batches failed).
func TestGrantBatchAfterLongOutage(t *testing.T) {
	const skew = 5 * time.Second // as in TestJoinAfterQuietSpell: at 2 s, the first enrolment's block came 2.4 s after it under -race
	n := startNetWith(t, []string{"cluster-a", "cluster-b"}, netConfig{maxSkewMS: skew.Milliseconds(), requestTimeout: time.Second})
	var states []*device.State
	for _, id := range []string{"a1", "a2"} {
		st, err := device.NewState(id)
		if err != nil {
			t.Fatal(err)
		}
		chtest.Enroll(t, n.ch("cluster-a"), st)
		if _, err := chtest.Dial(t, n.ch("cluster-a"), st).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
			t.Fatalf("join %s: %v", id, err)
		}
		states = append(states, st)
	}
	// CH A again, now that the network runs, with a short wait for commits.
	n.stop(0)
	n.opts[0] = func(o *bftledger.Options) { o.CommitTimeout = time.Second }
	n.start(0)
	chA := n.ch("cluster-a")
	a1, a2 := chtest.Dial(t, chA, states[0]), chtest.Dial(t, chA, states[1])
	n.stop(2)
	n.stop(3)
	if _, _, err := a2.Session(chtest.Ctx(t), "a1"); err != nil {
		t.Fatalf("session without a quorum (audit records do not wait for the ledger): %v", err)
	}
	chA.Core.Flush() // batch 1: its append ends uncertain
	// Let the batch's transaction go out of the event skew before the
	// validators return: it can no longer commit.
	time.Sleep(skew + 500*time.Millisecond)
	n.start(2)
	n.start(3)
	if _, _, err := a1.Session(chtest.Ctx(t), "a2"); err != nil {
		t.Fatalf("session after the validators returned: %v", err)
	}
	chA.Core.Flush() // batch 2, after batch 1 again

	batches := func() map[uint64]int {
		seqs := map[uint64]int{}
		err := n.ledger(1).Blocks(0, func(b ledger.Block) error {
			for _, ev := range b.Events {
				if ev.Type == ledger.EventSessionBatch && ev.Device == "cluster-a" {
					seqs[ev.Batch]++ // once, or more: copies whose appends were left uncertain
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	poll(t, "both batches on the ledger", 30*time.Second, func() error {
		if seqs := batches(); seqs[1] == 0 || seqs[2] == 0 {
			return fmt.Errorf("session batches %v of cluster-a on the ledger", seqs)
		}
		return nil
	})

	n.stop(0) // CH A: its grant log is free to read
	g, err := ledger.OpenGrantLog(filepath.Join(n.chDir("cluster-a"), ledger.GrantLogFile), true)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ledger.CheckGrants(chtest.Ctx(t), n.ledger(1), g, "cluster-a")
	g.Close()
	if err != nil || sum.Batches != 2 || sum.PendingBatches != 0 {
		t.Fatalf("grant log against the chain: %+v, %v; want 2 batches on the ledger, none pending", sum, err)
	}
	n.start(0)
	n.agree(0, 1, 2, 3)
}
