package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

func TestOpenCreatesGenesis(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)

	fi, err := os.Stat(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	head, ms, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	if head.Height != 0 || ms != e.clock.ms.Load() {
		t.Errorf("Head = %d at %d, want 0 at %d", head.Height, ms, e.clock.ms.Load())
	}
	blocks := allBlocks(t, l)
	if len(blocks) != 1 {
		t.Fatalf("%d blocks, want 1", len(blocks))
	}
	g := blocks[0]
	if g.Header.Prev != ([32]byte{}) || len(g.Events) != 0 || g.Header.Cluster != testCluster {
		t.Errorf("genesis %+v", g)
	}
	if h, _ := g.Header.Hash(); h != head.Hash {
		t.Errorf("genesis hash %x, head %x", h, head.Hash)
	}
	mustVerify(t, l)
}

func TestAppendEachType(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	a, b := join("a", "ka"), join("b", "kb")
	evs := []ledger.Event{a, b, session("a", "b"), warning("b", "c"), leave("a"), revoke("b")}

	var refs []ledger.BlockRef
	for i, ev := range evs {
		e.clock.ms.Add(1000)
		ref := mustAppend(t, l, ev)
		refs = append(refs, ref)
		head, ms, err := l.Head()
		if err != nil {
			t.Fatal(err)
		}
		if ref.Height != uint64(i+1) || head != ref || ms != e.clock.ms.Load() {
			t.Fatalf("%s: ref %d, head %d at %d", ev.Type, ref.Height, head.Height, ms)
		}
	}

	da, err := l.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.Device{
		ID: "a", Key: a.Key, Status: membership.Left, Joined: refs[0], Updated: refs[4],
		DeviceNonce: a.DeviceNonce, CHNonce: a.CHNonce, Expires: a.Expires, Lat: a.Lat, Lon: a.Lon,
	}
	if !reflect.DeepEqual(da, want) {
		t.Errorf("Lookup(a) =\n %+v\nwant\n %+v", da, want)
	}
	db, err := l.Lookup("b")
	if err != nil {
		t.Fatal(err)
	}
	if db.Status != membership.Revoked || db.Joined != refs[1] || db.Updated != refs[5] {
		t.Errorf("Lookup(b) = %+v", db)
	}
	if _, err := l.Lookup("c"); !errors.Is(err, ledger.ErrUnknownDevice) {
		t.Errorf("Lookup(c) = %v, want ErrUnknownDevice", err)
	}

	blocks := allBlocks(t, l)
	if len(blocks) != len(evs)+1 {
		t.Fatalf("%d blocks, want %d", len(blocks), len(evs)+1)
	}
	for i, ev := range evs {
		blk := blocks[i+1]
		if len(blk.Events) != 1 || !reflect.DeepEqual(blk.Events[0], ev) {
			t.Errorf("block %d holds %+v, want %+v", i+1, blk.Events, ev)
		}
		if h, _ := blk.Header.Hash(); h != refs[i].Hash {
			t.Errorf("block %d hash differs from its ref", i+1)
		}
		if i > 0 && blk.Header.Prev != refs[i-1].Hash {
			t.Errorf("block %d prev %x, want %x", i+1, blk.Header.Prev, refs[i-1].Hash)
		}
	}

	// Blocks from the middle, and stopping early.
	var heights []uint64
	stop := errors.New("stop")
	err = l.Blocks(3, func(b ledger.Block) error {
		heights = append(heights, b.Header.Height)
		if len(heights) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !reflect.DeepEqual(heights, []uint64{3, 4}) {
		t.Errorf("Blocks(3) = %v, %v", heights, err)
	}
	mustVerify(t, l)
}

// A session event must never carry key material: its stored form holds only
// the fields the caller set, none of them a key.
func TestSessionStoresNoKey(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "ka"))
	mustAppend(t, l, join("b", "kb"))
	ref := mustAppend(t, l, session("a", "b"))
	blocks := allBlocks(t, l)
	ev := blocks[ref.Height].Events[0]
	if ev.Key != nil || ev.DeviceNonce != nil || ev.CHNonce != nil || ev.Request != nil {
		t.Errorf("session event stored with key material: %+v", ev)
	}
}

func TestBlockTimeNeverGoesBack(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.clock.ms.Store(5_000)
	first := mustAppend(t, l, join("a", "k"))
	_, t1, _ := l.Head()
	e.clock.ms.Store(1_000) // clock stepped back
	mustAppend(t, l, join("b", "k"))
	_, t2, _ := l.Head()
	if t2 != t1 {
		t.Errorf("block time %d after %d", t2, t1)
	}
	if first.Height != 1 {
		t.Fatalf("first ref %d", first.Height)
	}
	mustVerify(t, l)
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	l, err := ledger.Open(e.path, e.options())
	if err != nil {
		t.Fatal(err)
	}
	ev := join("a", "ka")
	ref := mustAppend(t, l, ev)
	mustAppend(t, l, join("b", "kb"))
	head, ms, _ := l.Head()
	before := allDevices(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := e.open(t)
	head2, ms2, err := l2.Head()
	if err != nil || head2 != head || ms2 != ms {
		t.Fatalf("Head after restart = %+v at %d, %v; want %+v at %d", head2, ms2, err, head, ms)
	}
	d, err := l2.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.DeviceNonce, ev.DeviceNonce) || !bytes.Equal(d.CHNonce, ev.CHNonce) || d.Joined != ref {
		t.Errorf("Lookup after restart = %+v", d)
	}
	if got := allDevices(t, l2); !reflect.DeepEqual(got, before) {
		t.Errorf("index after restart differs")
	}
	mustVerify(t, l2)

	next := mustAppend(t, l2, leave("a"))
	blocks := allBlocks(t, l2)
	if next.Height != head.Height+1 || blocks[next.Height].Header.Prev != head.Hash {
		t.Errorf("append after restart: ref %d, prev %x, want %d after %x",
			next.Height, blocks[next.Height].Header.Prev, head.Height+1, head.Hash)
	}
	mustVerify(t, l2)
}

func TestOpenErrors(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "k"))

	for _, signer := range []ledger.Signer{e.key, nil} {
		t.Run(fmt.Sprintf("locked/signer=%v", signer != nil), func(t *testing.T) {
			opts := e.options()
			opts.Signer = signer
			opts.LockTimeout = 50 * time.Millisecond
			l2, err := ledger.Open(e.path, opts)
			if !errors.Is(err, ledger.ErrLocked) {
				if l2 != nil {
					l2.Close()
				}
				t.Fatalf("second Open = %v, want ErrLocked", err)
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
		mod  func(*ledger.Options)
		want error // nil: any error
	}{
		{"cluster mismatch", e.path, func(o *ledger.Options) { o.Cluster = "other" }, ledger.ErrClusterMismatch},
		{"new without signer", e.path + ".new", func(o *ledger.Options) { o.Signer = nil }, fs.ErrNotExist},
		{"empty bbolt file without signer", emptyBolt(t), func(o *ledger.Options) { o.Signer = nil }, ledger.ErrReadOnly},
		{"new without cluster", e.path + ".new", func(o *ledger.Options) { o.Cluster = "" }, nil},
		{"MaxBatch above limit", e.path, func(o *ledger.Options) { o.MaxBatch = ledger.MaxBatchLimit + 1 }, nil},
		{"MaxBatch negative", e.path, func(o *ledger.Options) { o.MaxBatch = -1 }, nil},
		{"not a bbolt file", writeFile(t, "junk.db", bytes.Repeat([]byte("x"), 8192)), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := e.options()
			if tt.mod != nil {
				tt.mod(&opts)
			}
			l, err := ledger.Open(tt.path, opts)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}

	// The failed Opens left the ledger as it was.
	l = e.open(t)
	if _, err := l.Lookup("a"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l)
}

// emptyBolt returns the path of a valid bbolt file without buckets.
func emptyBolt(t *testing.T) string {
	t.Helper()
	p := t.TempDir() + "/empty.db"
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t)
	l, err := ledger.Open(e.path, e.options())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, join("a", "k"))
	head, _, _ := l.Head()
	l.Close()

	// The CLI opens without knowing the cluster or holding the key.
	ro := e.open(t, func(o *ledger.Options) { o.Cluster = ""; o.Signer = nil })
	if ro.Cluster() != testCluster {
		t.Errorf("Cluster() = %q", ro.Cluster())
	}
	if got, _, _ := ro.Head(); got != head {
		t.Errorf("Head = %d, want %d", got.Height, head.Height)
	}
	if _, err := ro.Append(t.Context(), join("b", "k")); !errors.Is(err, ledger.ErrReadOnly) {
		t.Errorf("Append = %v, want ErrReadOnly", err)
	}
	mustVerify(t, ro)
}

func TestNoVerifier(t *testing.T) {
	e := newEnv(t)
	l := e.open(t, func(o *ledger.Options) { o.Verifier = nil })
	if err := l.Verify(t.Context(), nil); !errors.Is(err, ledger.ErrNoVerifier) {
		t.Errorf("Verify = %v, want ErrNoVerifier", err)
	}
}

func TestClosed(t *testing.T) {
	e := newEnv(t)
	l, err := ledger.Open(e.path, e.options())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, join("a", "k"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	calls := map[string]error{}
	_, calls["Append"] = l.Append(t.Context(), join("b", "k"))
	_, calls["Lookup"] = l.Lookup("a")
	_, _, calls["Head"] = l.Head()
	calls["Blocks"] = l.Blocks(0, func(ledger.Block) error { return nil })
	calls["Devices"] = l.Devices(func(ledger.Device) error { return nil })
	calls["Verify"] = l.Verify(t.Context(), nil)
	for name, err := range calls {
		if !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// Close racing with Appends: every Append gets a definite answer, and exactly
// the acknowledged events are in the ledger afterwards.
func TestCloseWhileAppending(t *testing.T) {
	e := newEnv(t)
	l, err := ledger.Open(e.path, e.options())
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = l.Append(context.Background(), join(id(i), "k"))
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	l = e.open(t)
	for i, err := range errs {
		_, lerr := l.Lookup(id(i))
		switch {
		case err == nil && lerr != nil:
			t.Errorf("acknowledged %s missing: %v", id(i), lerr)
		case err != nil && !errors.Is(err, ledger.ErrClosed):
			t.Errorf("Append %s = %v, want nil or ErrClosed", id(i), err)
		case err != nil && !errors.Is(lerr, ledger.ErrUnknownDevice):
			t.Errorf("refused %s is in the index: %v", id(i), lerr)
		}
	}
	mustVerify(t, l)
}

func TestAppendContextDone(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Append(ctx, join("a", "k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append = %v, want context.Canceled", err)
	}
	if _, err := l.Lookup("a"); !errors.Is(err, ledger.ErrUnknownDevice) {
		t.Errorf("Lookup = %v, want ErrUnknownDevice", err)
	}
	if head, _, _ := l.Head(); head.Height != 0 {
		t.Errorf("head %d, want 0", head.Height)
	}
}

// A failed commit writes nothing, leaves the head alone and does not poison
// the next block.
func TestCommitFailure(t *testing.T) {
	e := newEnv(t)
	fs := &failSigner{Signer: e.key}
	l := e.open(t, func(o *ledger.Options) { o.Signer = fs })
	mustAppend(t, l, join("a", "k"))
	head, _, _ := l.Head()

	fs.fail.Store(true)
	ev := join("b", "k")
	if _, err := l.Append(t.Context(), ev); !errors.Is(err, errSignerDown) {
		t.Fatalf("Append = %v, want errSignerDown", err)
	}
	if got, _, _ := l.Head(); got != head {
		t.Errorf("failed commit moved head to %d", got.Height)
	}
	if _, err := l.Lookup("b"); !errors.Is(err, ledger.ErrUnknownDevice) {
		t.Errorf("Lookup(b) = %v, want ErrUnknownDevice", err)
	}

	fs.fail.Store(false)
	ref := mustAppend(t, l, ev)
	if ref.Height != head.Height+1 {
		t.Errorf("ref %d after failed commit, want %d", ref.Height, head.Height+1)
	}
	mustVerify(t, l)
}

// More blocks and records than one read chunk, and more blocks than one
// progress interval.
func TestManyBlocks(t *testing.T) {
	const n = 300
	e := newEnv(t)
	l := e.open(t)
	for i := range n {
		mustAppend(t, l, join(id(n-1-i), "k")) // index order differs from block order
	}

	var heights []uint64
	for _, b := range allBlocks(t, l) {
		heights = append(heights, b.Header.Height)
	}
	if len(heights) != n+1 || heights[n] != n {
		t.Fatalf("Blocks returned %d blocks ending at %d, want %d", len(heights), heights[len(heights)-1], n+1)
	}
	for i, h := range heights {
		if h != uint64(i) {
			t.Fatalf("Blocks returned height %d at position %d", h, i)
		}
	}
	devs := allDevices(t, l)
	if len(devs) != n {
		t.Fatalf("Devices returned %d records, want %d", len(devs), n)
	}
	for i, d := range devs {
		if d.ID != id(i) {
			t.Fatalf("Devices returned %q at position %d, want %q", d.ID, i, id(i))
		}
	}

	var calls [][2]uint64
	if err := l.Verify(t.Context(), func(h, total uint64) { calls = append(calls, [2]uint64{h, total}) }); err != nil {
		t.Fatal(err)
	}
	if len(calls) < 2 || calls[len(calls)-1] != [2]uint64{n, n + 1} {
		t.Errorf("progress calls %v, want several ending with (%d, %d)", calls, n, n+1)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] <= calls[i-1][0] {
			t.Errorf("progress went from %d to %d", calls[i-1][0], calls[i][0])
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.Verify(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with canceled ctx = %v", err)
	}
}
