package bftledger_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotguard/iotguard/bftledger"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

// rewriter is a byzantine proposer: in every block it proposes it rebinds
// each joined device to the attacker's key (keeping the CH's signature) and
// slips in a revocation of victim that no CH signed.
type rewriter struct {
	t        *testing.T
	attacker *keysvc.Service
	victim   string
	fired    atomic.Int64 // proposals rewritten
}

func (r *rewriter) rewrite(txs [][]byte) [][]byte {
	if len(txs) == 0 {
		return txs
	}
	r.fired.Add(1)
	out := make([][]byte, 0, len(txs)+1)
	for _, raw := range txs {
		tx, err := bftledger.DecodeTx(raw)
		if err == nil && tx.Event.Type == ledger.EventJoin {
			tx.Event.Key = r.attacker.COSEKey()
			if b, err := tx.Encode(); err == nil {
				raw = b
			}
		}
		out = append(out, raw)
	}
	forged := &bftledger.Tx{Cluster: "cluster-a", Nonce: make([]byte, bftledger.NonceLen),
		Event: ledger.Event{Type: ledger.EventRevoke, Device: r.victim, Time: time.Now().UnixMilli(), Reason: "forged"}}
	rand.Read(forged.Nonce)
	msg, _ := forged.SignedBytes("iotguard-test")
	forged.Sig, _ = r.attacker.Sign(msg)
	if b, err := forged.Encode(); err == nil {
		out = append(out, b)
	}
	return out
}

// TestByzantineProposerIsOutvoted: validator 3 proposes blocks that rewrite
// what the CHs submitted. The honest validators refuse every such proposal,
// the next round's proposer commits the real events, and no validator —
// the byzantine one included — ends up with a rewritten record.
func TestByzantineProposerIsOutvoted(t *testing.T) {
	attacker, err := keysvc.Open(t.TempDir(), "attacker")
	if err != nil {
		t.Fatal(err)
	}
	r := &rewriter{t: t, attacker: attacker, victim: "a0"}
	n := startNet(t, []string{"cluster-a", "cluster-b"}, map[int]func(*bftledger.Options){
		3: func(o *bftledger.Options) { bftledger.WithProposalRewrite(o, r.rewrite) },
	})
	chA, chB := n.ch("cluster-a"), n.ch("cluster-b")
	chtest.Joined(t, chA, "a0")

	rejected := func() int64 {
		var sum int64
		for i := range 3 {
			sum += bftledger.RejectedProposals(n.ledger(i))
		}
		return sum
	}
	// Join until validator 3 has proposed (rewritten) a few blocks with
	// joins in them; proposers rotate, so that takes a handful of blocks.
	joined := []string{"a0"}
	for i := 0; i < 60 && (r.fired.Load() < 3 || rejected() < 3); i++ {
		ch, id := chA, fmt.Sprintf("a%d", i+1)
		if i%2 == 1 {
			ch, id = chB, fmt.Sprintf("b%d", i+1)
		}
		chtest.Joined(t, ch, id)
		joined = append(joined, id)
	}
	if r.fired.Load() < 3 || rejected() < 3 {
		t.Fatalf("validator 3 rewrote %d proposals, honest validators refused %d: the fault was not exercised", r.fired.Load(), rejected())
	}
	t.Logf("%d joins; validator 3 rewrote %d proposals; honest validators refused %d", len(joined), r.fired.Load(), rejected())

	n.agree(0, 1, 2, 3)
	for i := range validators {
		l := n.ledger(i)
		for _, id := range joined {
			d, err := l.Lookup(id)
			if err != nil {
				t.Fatalf("validator %d: %v", i, err)
			}
			if d.Status != membership.Member || bytes.Equal(d.Key, attacker.COSEKey()) {
				t.Fatalf("validator %d: %s is %v with key %x: a rewritten event was committed", i, id, d.Status, d.Key[:8])
			}
		}
	}
}

// TestDivergentValidatorHalts: validator 3 rewrites its own history — it
// rebinds a device to another key in its state, consistently with its state
// hash. The state hash its next block's results carry no longer matches the
// others': the three honest validators go on committing without it, it halts
// rather than follow blocks it cannot reproduce (their header's results hash
// is not its own), and its own verification finds the rewritten record.
func TestDivergentValidatorHalts(t *testing.T) {
	n := startNet(t, []string{"cluster-a", "cluster-b"}, nil)
	chA, chB := n.ch("cluster-a"), n.ch("cluster-b")
	a1 := chtest.Joined(t, chA, "a1")
	b1 := chtest.Joined(t, chB, "b1")
	n.agree(0, 1, 2, 3)
	// Tamper only while validator 3 is idle: it has applied the last block
	// of its store, and nothing is being executed.
	var before int64
	poll(t, "validator 3 idle", 30*time.Second, func() error {
		l := n.ledger(3)
		h, _, err := l.State()
		if err != nil {
			return err
		}
		if bs := l.Node().BlockStore(); bs.Height() != h {
			return fmt.Errorf("validator 3 at application height %d, block store %d", h, bs.Height())
		}
		before = h
		return nil
	})

	forged := bytes.Repeat([]byte{0xee}, 77)
	if err := bftledger.TamperDevice(n.ledger(3), "a1", func(d *ledger.Device) { d.Key = forged }); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 5; i++ {
		chtest.Joined(t, chA, fmt.Sprintf("a%d", i))
		chtest.Joined(t, chB, fmt.Sprintf("b%d", i))
	}
	honest, _ := n.agree(0, 1, 2)

	// Validator 3 applied at most the first block after the tampering (its
	// header still carried the honest results of the block before), then
	// stopped.
	h3, _, err := n.ledger(3).State()
	if err != nil {
		t.Fatal(err)
	}
	if h3 > before+1 || honest <= h3+1 {
		t.Fatalf("divergent validator at height %d, honest ones at %d (tampered at %d): it did not halt", h3, honest, before)
	}
	poll(t, "consensus failure logged", 10*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(n.homes[3], "node.log"))
		if !strings.Contains(string(b), "CONSENSUS FAILURE") || !strings.Contains(string(b), "wrong Block.Header.LastResultsHash") {
			return errors.New("validator 3 logged no consensus failure over the results hash")
		}
		return nil
	})
	if err := n.ledger(3).Verify(chtest.Ctx(t), nil); !errors.Is(err, ledger.ErrIndexMismatch) {
		t.Fatalf("verify on the divergent validator: %v, want an index mismatch", err)
	}

	// The shared ledger still says what CH A recorded.
	for i := range 3 {
		d, err := n.ledger(i).Lookup("a1")
		if err != nil || bytes.Equal(d.Key, forged) {
			t.Fatalf("validator %d: a1 = %x, %v", i, d.Key, err)
		}
	}
	v, err := b1.Verify(chtest.Ctx(t), "a1")
	if err != nil || v.Status.Membership() != membership.Member || v.Height != a1.Membership().Height {
		t.Fatalf("verify a1 through CH B after the divergence: %+v %v", v, err)
	}
}
