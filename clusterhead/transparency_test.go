package clusterhead_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/rfc9162ref"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// leaves returns the block hashes of ch's ledger: the tree's leaf inputs,
// read from the blocks, not from the tree.
func leaves(t *testing.T, ch *clusterhead.CH) [][]byte {
	t.Helper()
	var out [][]byte
	err := ch.Ledger.Blocks(0, func(b ledger.Block) error {
		h, err := b.Header.Hash()
		out = append(out, h[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func public(t *testing.T, ch *clusterhead.CH) *device.Public {
	t.Helper()
	thumb := ch.Keys.Thumbprint()
	p, err := device.DialPublic("coap://"+ch.Addr(), thumb[:])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestTransparencyOverUDP: a CH serves its checkpoint, inclusion proofs by
// device and by height, and consistency proofs from every earlier size, each
// verifying under the pinned CH key and matching the RFC 9162 values that
// the independent reference computes from the blocks themselves.
func TestTransparencyOverUDP(t *testing.T) {
	ch := chtest.Start(t, "")
	for _, id := range []string{"a", "b", "c"} {
		chtest.Joined(t, ch, id) // Join proves each join in the log too
	}
	p := public(t, ch)
	ctx := chtest.Ctx(t)
	info, key, err := p.ClusterKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ls := leaves(t, ch)
	n := uint64(len(ls))
	cp, err := p.Checkpoint(ctx, key, info.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != n || string(cp.Root[:]) != string(rfc9162ref.MTH(ls)) {
		t.Fatalf("checkpoint size %d root %x; the blocks give %d %x", cp.Size, cp.Root, n, rfc9162ref.MTH(ls))
	}
	for _, id := range []string{"a", "b", "c"} {
		d, err := ch.Ledger.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		in, err := p.Proof(ctx, key, info.Cluster, id, 0)
		if err != nil {
			t.Fatalf("proof of %s: %v", id, err)
		}
		if in.Index != d.Joined.Height || in.BlockHash != d.Joined.Hash {
			t.Errorf("proof of %s is of block %d, its join is in %d", id, in.Index, d.Joined.Height)
		}
	}
	for h := uint64(0); h < n; h++ {
		in, err := p.Proof(ctx, key, info.Cluster, "", h)
		if err != nil {
			t.Fatalf("proof of block %d: %v", h, err)
		}
		if fmt.Sprintf("%x", in.Path) != fmt.Sprintf("%x", rfc9162ref.Path(int(h), ls)) {
			t.Errorf("path of block %d = %x, RFC 9162 PATH gives %x", h, in.Path, rfc9162ref.Path(int(h), ls))
		}
	}
	for m := uint64(1); m <= n; m++ {
		c, err := p.Consistency(ctx, key, info.Cluster, m)
		if err != nil {
			t.Fatalf("consistency from %d: %v", m, err)
		}
		if string(c.OldRoot[:]) != string(rfc9162ref.MTH(ls[:m])) || !rfc9162ref.VerifyConsistency(m, n, c.OldRoot[:], cp.Root[:], c.Path) {
			t.Errorf("consistency from %d does not verify by the reference", m)
		}
	}

	// The device kept its checkpoint; its next check proves consistency from it.
	d := chtest.Joined(t, ch, "d")
	chtest.Joined(t, ch, "e")
	before := chtest.Height(t, ch)
	in, err := d.CheckJoin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.OldSize == 0 || in.OldSize >= in.Checkpoint.Size || in.Checkpoint.Size != before+1 {
		t.Errorf("second check: consistency from %d to %d (ledger height %d)", in.OldSize, in.Checkpoint.Size, before)
	}
}

// TestTransparencyRejections: what the log does not have, or a query that
// does not parse, gets its code and a diagnostic that says which; nothing is
// written.
func TestTransparencyRejections(t *testing.T) {
	ch := chtest.Start(t, "")
	chtest.Joined(t, ch, "a") // 3 blocks: genesis, a's enrollment, its join
	conn := chtest.Raw(t, ch)
	// This association's address verified (the public resources answer an
	// unverified one 4.01 + Echo first, reflection_test.go).
	echo := chtest.Get(t, conn, "/ledger/head").Echo
	for _, c := range []struct {
		path  string
		query []string
		code  codes.Code
		diag  string
	}{
		{"/ledger/proof", []string{"id=nobody"}, codes.NotFound, "unknown device"},
		{"/ledger/proof", []string{"height=3"}, codes.NotFound, "not in the log: block 3 (tree size 3)"},
		{"/ledger/proof", []string{"id=a", "from=4"}, codes.NotFound, "not in the log: tree size 4 (the log has 3)"},
		{"/ledger/consistency", []string{"from=5"}, codes.NotFound, "not in the log: tree size 5 (the log has 3)"},
		{"/ledger/proof", nil, codes.BadRequest, "malformed: name the block with id=ID or height=N"},
		{"/ledger/proof", []string{"id=a", "height=1"}, codes.BadRequest, "malformed: name the block"},
		{"/ledger/proof", []string{"id=a/b"}, codes.BadRequest, "malformed: id:"},
		{"/ledger/proof", []string{"height=-1"}, codes.BadRequest, `malformed: height="-1" is not a number`},
		{"/ledger/proof", []string{"height=01"}, codes.BadRequest, `malformed: height="01"`},
		{"/ledger/proof", []string{"id=a", "from=0"}, codes.BadRequest, `malformed: from="0" is not a number ≥ 1`},
		{"/ledger/proof", []string{"id=a", "id=b"}, codes.BadRequest, `malformed: query "id=b"`},
		{"/ledger/proof", []string{"size=3"}, codes.BadRequest, `malformed: query "size=3"`},
		{"/ledger/consistency", nil, codes.BadRequest, "malformed: from=N is required"},
	} {
		before := chtest.Snap(t, ch)
		req, err := conn.NewGetRequest(chtest.Ctx(t), c.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range c.query {
			req.AddQuery(q)
		}
		req.SetOptionBytes(message.Echo, echo)
		resp, err := conn.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := resp.ReadBody()
		cf, _ := resp.ContentFormat()
		if resp.Code() != c.code || !strings.HasPrefix(string(body), c.diag) || cf != message.TextPlain {
			t.Errorf("GET %s?%s: %v %q, want %v %q", c.path, strings.Join(c.query, "&"), resp.Code(), body, c.code, c.diag)
		}
		chtest.Unchanged(t, ch, before)
	}
}

// TestCheckpointSignedOncePerSize: every GET of an unchanged log answers the
// same signed bytes (no signature per request); a new block makes a new one.
func TestCheckpointSignedOncePerSize(t *testing.T) {
	ch := chtest.Start(t, "")
	first, err := ch.Core.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ch.Core.Checkpoint()
	if string(again) != string(first) {
		t.Error("an unchanged log was signed again")
	}
	chtest.Joined(t, ch, "a") // its enrollment and its join
	next, _ := ch.Core.Checkpoint()
	cp, err := transparency.OpenCheckpoint(next, ch.Keys.PublicKey(), "")
	if err != nil || cp.Size != 3 {
		t.Fatalf("checkpoint after a join: %+v, %v", cp, err)
	}
}

// TestDeviceDetectsForgedJoinBlock: a device whose join answer named a block
// that the log does not hold there (here: its stored block hash altered,
// as if the CH had answered about another block) refuses the proof with
// ErrNotInLog; so does one whose kept checkpoint the log forked from.
func TestDeviceDetectsForgedJoinBlock(t *testing.T) {
	ch := chtest.Start(t, "")
	st, err := device.NewState("victim")
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, ch, st)
	d := chtest.Dial(t, ch, st)
	if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	st.Membership.BlockHash[0] ^= 1
	if _, err := d.CheckJoin(chtest.Ctx(t)); !errors.Is(err, device.ErrNotInLog) || !strings.Contains(err.Error(), "the join answer named block") {
		t.Fatalf("CheckJoin with another block hash = %v, want ErrNotInLog", err)
	}
	st.Membership.BlockHash[0] ^= 1

	// A kept checkpoint of a log this CH never had: same key, another root.
	s1, err := wire.ParseSign1(st.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	var body wire.Checkpoint
	if err := wire.Decode(s1.Payload, &body); err != nil {
		t.Fatal(err)
	}
	body.Root[0] ^= 1
	forged, err := transparency.SignCheckpoint(ch.Keys, body.Cluster, body.Size, [32]byte(body.Root), int64(body.TimeMS))
	if err != nil {
		t.Fatal(err)
	}
	st.Checkpoint = forged
	chtest.Joined(t, ch, "other")
	_, err = d.CheckJoin(chtest.Ctx(t))
	var fork *transparency.ForkError
	if !errors.Is(err, device.ErrNotInLog) || !errors.As(err, &fork) {
		t.Fatalf("CheckJoin after a fork = %v, want ErrNotInLog with a ForkError", err)
	}
}
