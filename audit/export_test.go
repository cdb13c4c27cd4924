package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/audit"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

const cluster = "audit-cluster"

// t0 is the tests' clock: block times and grant batch times derive from it.
var t0 = time.UnixMilli(1_700_000_000_000)

// scene is a CH's ledger, grant log and key, in a temp dir.
type scene struct {
	l   *ledger.Bolt
	g   *ledger.GrantLog
	key *keysvc.Service
	n   int // joins so far, for fresh nonces
}

// recordPrunes records s.g's prunes on s.l, as a CH does.
func (s *scene) recordPrunes(ctx context.Context, horizon uint64) (ledger.BlockRef, error) {
	return s.l.Append(ctx, ledger.GrantsPrunedEvent(cluster, horizon, time.Now()))
}

func newScene(t testing.TB) *scene {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keysvc.New(priv, cluster)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{Cluster: cluster, Signer: key, Verifier: key,
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	g, err := ledger.OpenGrantLog(filepath.Join(dir, ledger.GrantLogFile), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return &scene{l: l, g: g, key: key}
}

// join appends a valid join of id, with evidence signed by a fresh device key.
func (s *scene) join(t testing.TB, id string) {
	t.Helper()
	s.n++
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := wire.EncodePublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ev := ledger.Event{Type: ledger.EventJoin, Device: id, Time: t0.UnixMilli(), Key: pub,
		DeviceNonce: fmt.Appendf(nil, "device-nonce%04d", s.n), CHNonce: fmt.Appendf(nil, "ch-nonce-%d", s.n),
		Lat: 48_137_154, Lon: 11_576_124, Expires: 1_800_000_000}
	req, err := wire.Marshal(&wire.JoinRequest{Cluster: cluster, ID: id, Key: pub, Lat: ev.Lat, Lon: ev.Lon, Nonce: ev.DeviceNonce})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Request, err = wire.Sign1(k, []byte(id), wire.AADJoinRequest, req); err != nil {
		t.Fatal(err)
	}
	if _, err := s.l.Append(t.Context(), ev); err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
}

// records returns n encoded session records of from with peer.
func records(t testing.TB, n int, from, peer string) [][]byte {
	t.Helper()
	recs := make([][]byte, n)
	for i := range recs {
		b, err := wire.Marshal(ledger.Event{Type: ledger.EventSession, Device: from, Peer: peer, Time: t0.UnixMilli(),
			Expires: 1_700_000_600, SessionID: fmt.Appendf(nil, "sid-%s-%s-%d", from, peer, i)})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = b
	}
	return recs
}

// batch writes recs as the next grant batch at time at and commits it to
// the ledger, as the CH does.
func (s *scene) batch(t testing.TB, recs [][]byte, at time.Time) ledger.GrantBatch {
	t.Helper()
	b, err := s.g.Write(recs, at)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.l.Append(t.Context(), b.Event(cluster))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.g.Committed(b.Seq, ref.Height); err != nil {
		t.Fatal(err)
	}
	return b
}

// export returns the export of the scene, grant log included unless g is nil.
func (s *scene) export(t testing.TB, g audit.Grants) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := audit.Export(&buf, s.l, g, cluster, s.key, nil); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.Bytes()
}

func (s *scene) verify(b []byte) (*audit.ExportReport, error) {
	return audit.VerifyExport(bytes.NewReader(b), s.key.Thumbprint(), nil)
}

// grantScene: m1 and m2 joined; batch 1 holds 3 grants of m2 with m1,
// batch 2 3 grants of m1 with m2, both committed.
func grantScene(t testing.TB) *scene {
	t.Helper()
	s := newScene(t)
	s.join(t, "m1")
	s.join(t, "m2")
	s.batch(t, records(t, 3, "m2", "m1"), t0)
	s.batch(t, records(t, 3, "m1", "m2"), t0.Add(time.Hour))
	return s
}

// exportFile is an export taken apart, to be tampered with and put back.
type exportFile struct {
	hdr        wire.ExportHeader
	blocks     [][]byte
	checkpoint []byte
	batches    []exportBatch
}

type exportBatch struct {
	item wire.ExportGrants
	recs [][]byte
}

func parseExport(t testing.TB, b []byte) *exportFile {
	t.Helper()
	dec := wire.NewSequenceDecoder(bytes.NewReader(b))
	var f exportFile
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	must(dec.Decode(&f.hdr))
	f.blocks = make([][]byte, f.hdr.Blocks)
	for i := range f.blocks {
		must(dec.Decode(&f.blocks[i]))
	}
	must(dec.Decode(&f.checkpoint))
	for range f.hdr.Grants {
		var eb exportBatch
		must(dec.Decode(&eb.item))
		eb.recs = make([][]byte, eb.item.Count)
		for i := range eb.recs {
			must(dec.Decode(&eb.recs[i]))
		}
		f.batches = append(f.batches, eb)
	}
	var extra []byte
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("data after the export: %v", err)
	}
	return &f
}

// encode puts f back together, the header as it is.
func (f *exportFile) encode(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	put := func(v any) {
		b, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	put(&f.hdr)
	for _, b := range f.blocks {
		put(b)
	}
	put(f.checkpoint)
	for _, eb := range f.batches {
		put(&eb.item)
		for _, r := range eb.recs {
			put(r)
		}
	}
	return buf.Bytes()
}

// An export of a ledger with grant batches carries their records, and
// verifies with every grant checked.
func TestExportGrants(t *testing.T) {
	s := grantScene(t)
	b := s.export(t, s.g)
	f := parseExport(t, b)
	if f.hdr.Version != 2 || f.hdr.Blocks != 5 || f.hdr.Grants != 2 { // no rotation: nothing of version 3
		t.Fatalf("header %+v, want version 2, 5 blocks, 2 grant batches", f.hdr)
	}
	rep, err := s.verify(b)
	if err != nil {
		t.Fatalf("VerifyExport: %v", err)
	}
	want := audit.GrantReport{Batches: 2, Grants: 6}
	if rep.Grants != want || rep.Devices != 2 || rep.Checkpoint.Size != 5 {
		t.Errorf("report %+v (grants %+v), want 2 devices, 5 blocks, grants %+v", rep, rep.Grants, want)
	}
	if recs, _ := s.g.Records(1); !equalRecords(f.batches[0].recs, recs) || f.batches[0].item != (wire.ExportGrants{Batch: 1, Count: 3}) {
		t.Errorf("batch 1 exported as %+v", f.batches[0].item)
	}
}

func equalRecords(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Every change to the grant records of an export is caught, naming the
// batch; the blocks and the checkpoint are untouched, so only the grant
// check can catch it.
func TestVerifyExportGrantTampering(t *testing.T) {
	s := grantScene(t)
	valid := s.export(t, s.g)
	other := records(t, 4, "m1", "m2")[3] // a valid record of neither batch
	for _, c := range []struct {
		name   string
		tamper func(f *exportFile)
		want   string
		grant  bool // the error wraps ledger.ErrBadGrant
	}{
		{"record changed", func(f *exportFile) { f.batches[0].recs[1] = other }, "batch 1: the records hash to", true},
		{"record dropped", func(f *exportFile) {
			f.batches[0].recs = f.batches[0].recs[:2]
			f.batches[0].item.Count = 2
		}, "batch 1: 2 records, the ledger says 3", true},
		{"record dropped, count kept", func(f *exportFile) { f.batches[0].recs = f.batches[0].recs[:2] }, "batch 1: record 2 of 3", false},
		{"record added", func(f *exportFile) {
			f.batches[1].recs = append(f.batches[1].recs, other)
			f.batches[1].item.Count = 4
		}, "batch 2: 4 records, the ledger says 3", true},
		{"record added, count kept", func(f *exportFile) { f.batches[1].recs = append(f.batches[1].recs, other) }, "data after the last grant batch", false},
		{"records swapped", func(f *exportFile) {
			r := f.batches[1].recs
			r[0], r[1] = r[1], r[0]
		}, "batch 2: the records hash to", true},
		{"batch attributed to another seq", func(f *exportFile) {
			f.batches, f.hdr.Grants = f.batches[:1], 1
			f.batches[0].item.Batch = 2
		}, "batch 2: the records hash to", true},
		{"batches out of order", func(f *exportFile) { f.batches[0], f.batches[1] = f.batches[1], f.batches[0] }, "grant batch 1 after batch 2", false},
		{"a batch twice", func(f *exportFile) { f.batches[1] = f.batches[0] }, "grant batch 1 after batch 1", false},
		{"a batch not on the chain", func(f *exportFile) { f.batches[1].item.Batch = 9 }, "batch 9 is not on the exported chain", true},
		{"header counts one batch more", func(f *exportFile) { f.hdr.Grants = 3 }, "grant batch item 2 of 3 (after batch 2)", false},
		{"header counts one batch less", func(f *exportFile) { f.hdr.Grants = 1 }, "batch 2 (3 grants, block 4) has no records in the export and no grants-pruned event", true},
		{"a batch left out", func(f *exportFile) { f.batches, f.hdr.Grants = f.batches[:1], 1 }, "batch 2 (3 grants, block 4) has no records in the export", true},
		{"grants in a version 1 export", func(f *exportFile) { f.hdr.Version = 1 }, "grant batches in a version 1 export", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := parseExport(t, valid)
			c.tamper(f)
			_, err := s.verify(f.encode(t))
			if !errors.Is(err, audit.ErrExport) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("VerifyExport: %v, want ErrExport: %s", err, c.want)
			}
			if got := errors.Is(err, ledger.ErrBadGrant); got != c.grant {
				t.Errorf("wraps ErrBadGrant: %v, want %v (%v)", got, c.grant, err)
			}
		})
	}
}

// Records naming a device that never joined, or that joined only after the
// batch's block, are not grants the CH could have made.
func TestVerifyExportGrantOfUnknownDevice(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(t *testing.T, s *scene)
		want  string
	}{
		{"never joined", func(t *testing.T, s *scene) {
			s.batch(t, records(t, 2, "m1", "ghost"), t0)
		}, `batch 1, grant 0: session of "m1" with "ghost": "ghost": unknown device: no join before block 2`},
		{"joined after the batch", func(t *testing.T, s *scene) {
			s.batch(t, records(t, 1, "late", "m1"), t0)
			s.join(t, "late")
		}, `batch 1, grant 0: session of "late" with "m1": "late": unknown device: no join before block 2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScene(t)
			s.join(t, "m1")
			c.build(t, s)
			_, err := s.verify(s.export(t, s.g))
			if !errors.Is(err, ledger.ErrBadGrant) || !errors.Is(err, ledger.ErrUnknownDevice) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("VerifyExport: %v, want %s", err, c.want)
			}
		})
	}
}

// A pruned batch stays on the chain, counted and rooted, without records in
// the export: reported as pruned, not an error, since a grants-pruned event
// on the chain covers it. A batch without records that no prune covers —
// withheld, or on the chain but not yet marked committed in the grant log —
// makes the export not intact.
func TestVerifyExportPrunedGrants(t *testing.T) {
	s := grantScene(t)
	if p, err := s.g.Prune(t.Context(), t0.Add(time.Minute), s.recordPrunes, nil); err != nil || p.Batches != 1 || p.Records != 3 {
		t.Fatalf("Prune: %+v, %v", p, err)
	}
	rep, err := s.verify(s.export(t, s.g))
	if want := (audit.GrantReport{Batches: 1, Grants: 3, PrunedBatches: 1, PrunedGrants: 3}); err != nil || rep.Grants != want {
		t.Fatalf("VerifyExport: %+v, %v; want %+v", rep, err, want)
	}

	b, err := s.g.Write(records(t, 2, "m2", "m1"), t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.l.Append(t.Context(), b.Event(cluster))
	if err != nil { // a crash before Committed
		t.Fatal(err)
	}
	exp := s.export(t, s.g)
	if f := parseExport(t, exp); f.hdr.Grants != 1 || f.batches[0].item.Batch != 2 {
		t.Fatalf("exported grant batches: header %d, %+v", f.hdr.Grants, f.batches)
	}
	if _, err := s.verify(exp); !errors.Is(err, ledger.ErrBadGrant) || !strings.Contains(err.Error(), "batch 3 (2 grants") || !strings.Contains(err.Error(), "start the CH once") {
		t.Fatalf("VerifyExport with batch 3 not marked committed: %v; want ErrBadGrant naming it", err)
	}
	if err := s.g.Committed(b.Seq, ref.Height); err != nil { // the CH's next start
		t.Fatal(err)
	}
	if rep, err := s.verify(s.export(t, s.g)); err != nil || rep.Grants.Batches != 2 || rep.Grants.PrunedBatches != 1 {
		t.Fatalf("VerifyExport once marked: %+v, %v", rep, err)
	}

	// A CH that deletes records and says so on no ledger: its export
	// withholds them.
	head, _, err := s.l.Head()
	if err != nil {
		t.Fatal(err)
	}
	unrecorded := func(context.Context, uint64) (ledger.BlockRef, error) {
		return ledger.BlockRef{Height: head.Height + 1}, nil
	}
	if p, err := s.g.Prune(t.Context(), t0.Add(3*time.Hour), unrecorded, nil); err != nil || p.Batches != 2 {
		t.Fatalf("Prune: %+v, %v", p, err)
	}
	if _, err := s.verify(s.export(t, s.g)); !errors.Is(err, audit.ErrExport) || !strings.Contains(err.Error(), "batch 2 (3 grants") || !strings.Contains(err.Error(), "withheld") {
		t.Fatalf("VerifyExport of withheld batches: %v; want ErrExport naming batch 2", err)
	}
}

// Without a grant log, and for a ledger without batches, the export is what
// it was: blocks and checkpoint, no grant items; a version 1 export of the
// same blocks still verifies.
func TestExportWithoutGrants(t *testing.T) {
	s := newScene(t)
	s.join(t, "m1")
	s.join(t, "m2")
	for name, g := range map[string]audit.Grants{"nil grant log": nil, "empty grant log": s.g} {
		exp := s.export(t, g)
		f := parseExport(t, exp)
		if f.hdr.Grants != 0 || len(f.batches) != 0 {
			t.Fatalf("%s: %d grant batches exported", name, f.hdr.Grants)
		}
		rep, err := s.verify(exp)
		if err != nil || rep.Grants != (audit.GrantReport{}) || rep.Devices != 2 {
			t.Fatalf("%s: VerifyExport: %+v, %v", name, rep, err)
		}
		f.hdr.Version = 1
		if _, err := s.verify(f.encode(t)); err != nil {
			t.Fatalf("%s: version 1: %v", name, err)
		}
	}
	// Batches on the chain, no grant log given: their records are withheld.
	s.batch(t, records(t, 2, "m2", "m1"), t0)
	if _, err := s.verify(s.export(t, nil)); !errors.Is(err, ledger.ErrBadGrant) || !strings.Contains(err.Error(), "withheld") {
		t.Fatalf("VerifyExport without grant log: %v; want the batch withheld", err)
	}
}

// Export refuses a grant log that disagrees with the chain it exports,
// rather than write an export that does not verify.
func TestExportInconsistentGrantLog(t *testing.T) {
	s := newScene(t)
	s.join(t, "m1")
	s.join(t, "m2")
	b, err := s.g.Write(records(t, 2, "m2", "m1"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.g.Committed(b.Seq, 2); err != nil { // block 2 is m2's join
		t.Fatal(err)
	}
	_, err = audit.Export(io.Discard, s.l, s.g, cluster, s.key, nil)
	if err == nil || !strings.Contains(err.Error(), "failed to export grant batch 1") {
		t.Fatalf("Export: %v, want a grant log that disagrees with the chain", err)
	}
}

// FuzzVerifyExport: VerifyExport reads attacker bytes: it never panics and
// fails with ErrExport or a bad block. The seeds are a valid export with
// two grant batches and the same export with one.
func FuzzVerifyExport(f *testing.F) {
	s := grantScene(f)
	valid := s.export(f, s.g)
	f.Add(valid)
	ex := parseExport(f, valid)
	ex.batches, ex.hdr.Grants = ex.batches[:1], 1
	f.Add(ex.encode(f))
	pin := s.key.Thumbprint()
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := audit.VerifyExport(bytes.NewReader(b), pin, nil)
		var bad *ledger.BadBlockError
		switch {
		case err == nil:
			if rep.Checkpoint == nil || rep.Grants.Batches > rep.Checkpoint.Size {
				t.Fatalf("accepted with report %+v", rep)
			}
		case errors.Is(err, audit.ErrExport), errors.As(err, &bad):
		default:
			t.Fatalf("VerifyExport: %v is neither ErrExport nor a bad block", err)
		}
	})
}

// FuzzVerifyExportSince: the kept checkpoint (from a watch state file) is
// bytes too: with a valid export, it never panics and fails with ErrExport
// or a fork. The seed is the export's own checkpoint.
func FuzzVerifyExportSince(f *testing.F) {
	s := grantScene(f)
	export := s.export(f, s.g)
	rep, err := s.verify(export)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rep.Checkpoint.Signed)
	pin := s.key.Thumbprint()
	f.Fuzz(func(t *testing.T, kept []byte) {
		_, err := audit.VerifyExportSince(bytes.NewReader(export), pin, kept, nil)
		var fork *transparency.ForkError
		if err != nil && !errors.Is(err, audit.ErrExport) && !errors.As(err, &fork) {
			t.Fatalf("VerifyExportSince: %v is neither ErrExport nor a fork", err)
		}
	})
}

// A chain that holds a batch number twice with other grants is refused, as
// ledger verify refuses it (ledger.IndexBatches), records exported or not;
// the same batch twice (an uncertain append and its retry, both committed on
// a shared ledger) is that batch.
func TestVerifyExportBatchTwiceOnChain(t *testing.T) {
	s := newScene(t)
	s.join(t, "m1")
	s.join(t, "m2")
	b := s.batch(t, records(t, 2, "m2", "m1"), t0)
	// The grant log names block 3, the copy the CH's append got; the other,
	// left uncertain, committed after it.
	again := b.Event(cluster)
	again.Time += time.Minute.Milliseconds()
	if _, err := s.l.Append(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.verify(s.export(t, s.g)); err != nil || rep.Grants.Batches != 1 {
		t.Fatalf("VerifyExport of the same batch twice: %+v, %v; want it once", rep, err)
	}
	// Had the CH's append got the later copy, its grant log names block 4,
	// and a record's proof (ledger grant-proof) names it too.
	if err := s.g.Committed(b.Seq, 4); err != nil {
		t.Fatal(err)
	}
	rep, err := s.verify(s.export(t, s.g))
	if err != nil || rep.Grants.Batches != 1 {
		t.Fatalf("VerifyExport of the same batch twice, the later copy marked: %+v, %v; want it once", rep, err)
	}
	p, err := ledger.ProveAuditRecord(s.l, s.g, cluster, b.Seq, 1)
	if err != nil {
		t.Fatal(err)
	}
	if grant, err := rep.CheckGrant(audit.NewGrantClaim(cluster, p)); err != nil || grant.Device != "m2" {
		t.Fatalf("CheckGrant of a record of the later copy: %+v, %v", grant, err)
	}
	other := b.Event(cluster)
	other.Count++
	if _, err := s.l.Append(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	_, err = s.verify(s.export(t, nil))
	if !errors.Is(err, audit.ErrExport) || !errors.Is(err, ledger.ErrBadGrant) || !strings.Contains(err.Error(), "block 5 holds batch 1 again") {
		t.Fatalf("VerifyExport: %v, want batch 1 twice", err)
	}
}

// rotate rotates the scene's CH key as `iotguard rotate-key` does: a rotate
// event signed by the key in force, in a block the new key signs.
func (s *scene) rotate(t testing.TB) {
	t.Helper()
	rot, _, err := s.key.PrepareRotation(t.TempDir(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.l.Append(t.Context(), ledger.Event{Type: ledger.EventRotate, Device: cluster, Time: t0.UnixMilli(), Request: rot}); err != nil {
		t.Fatalf("rotate: %v", err)
	}
}

func thumbOf(t testing.TB, coseKey []byte) [32]byte {
	t.Helper()
	pub, err := wire.ParsePublicKey(coseKey)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Thumbprint(pub)
}

// The export of a CH whose key was rotated twice carries the keys before the
// one in force and verifies, the chain of keys followed as ledger verify
// follows it, pinned to any of its keys: the first, the one in force or
// the one between. (Before, it did not verify at all: "export BROKEN at
// block 0: bad signature: bad signature" under the key in force.)
func TestVerifyExportAfterRotation(t *testing.T) {
	s := newScene(t)
	s.join(t, "m1")
	s.rotate(t)
	s.join(t, "m2")
	s.batch(t, records(t, 2, "m2", "m1"), t0)
	s.rotate(t)
	s.join(t, "m3")
	keys := s.key.Keys()
	if len(keys) != 3 {
		t.Fatalf("%d keys after two rotations", len(keys))
	}
	b := s.export(t, s.g)
	f := parseExport(t, b)
	if f.hdr.Version != 3 || !bytes.Equal(f.hdr.Key, keys[2]) || len(f.hdr.Earlier) != 2 ||
		!bytes.Equal(f.hdr.Earlier[0], keys[0]) || !bytes.Equal(f.hdr.Earlier[1], keys[1]) {
		t.Fatalf("header version %d, key %x, earlier %x; want version 3, the key in force and the 2 before it", f.hdr.Version, f.hdr.Key, f.hdr.Earlier)
	}
	for i, k := range keys {
		rep, err := audit.VerifyExport(bytes.NewReader(b), thumbOf(t, k), nil)
		if err != nil {
			t.Fatalf("pinned to key %d of 3: %v", i+1, err)
		}
		if rep.Checkpoint.KID != s.key.Thumbprint() || rep.Devices != 3 || rep.Grants.Grants != 2 || rep.Checkpoint.Size != 7 {
			t.Fatalf("pinned to key %d: report %+v, checkpoint by %x", i+1, rep, rep.Checkpoint.KID)
		}
	}

	foreign := newScene(t).key.COSEKey()
	for _, c := range []struct {
		name   string
		pin    []byte
		tamper func(h *wire.ExportHeader)
		want   string
	}{
		{"a pin of another key", foreign, func(*wire.ExportHeader) {}, "rotated from "},
		{"the earlier keys left out", keys[2], func(h *wire.ExportHeader) { h.Earlier = nil },
			"block 0: bad signature: not by CH key " + fmt.Sprintf("%x", thumbOf(t, keys[2]))},
		{"another key in the middle", keys[0], func(h *wire.ExportHeader) { h.Earlier[1] = foreign },
			"block 2: rotation to another key than the next key of the export"},
		{"a key the rotations never reach", keys[0], func(h *wire.ExportHeader) {
			h.Earlier, h.Key = append(h.Earlier, h.Key), foreign
		}, "rotations reach CH key 3 of 4 in the export"},
		{"earlier keys in a version 2 export", keys[2], func(h *wire.ExportHeader) { h.Version = 2 }, "earlier CH keys in a version 1 or 2 export"},
	} {
		f := parseExport(t, b)
		c.tamper(&f.hdr)
		_, err := audit.VerifyExport(bytes.NewReader(f.encode(t)), thumbOf(t, c.pin), nil)
		var bad *ledger.BadBlockError
		if err == nil || !(errors.Is(err, audit.ErrExport) || errors.As(err, &bad)) || !strings.Contains(errorText(err), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(errorText(err), "bad signature: bad signature") {
			t.Errorf("%s: %v says it twice", c.name, err)
		}
	}
}

// errorText is err's text, with a bad block's height.
func errorText(err error) string {
	var bad *ledger.BadBlockError
	if errors.As(err, &bad) {
		return fmt.Sprintf("block %d: %s", bad.Height, bad.Reason)
	}
	return err.Error()
}

// TestVerifyExportSinceKept: a CH that rebuilt its history and re-signed it
// with its own key exports a chain that VerifyExport passes; held to a
// checkpoint the auditor kept of the log as it was (a watch state's), the
// export is a fork, with both checkpoints. An honest later export extends
// the kept checkpoint; an export smaller than it is a fork too.
func TestVerifyExportSinceKept(t *testing.T) {
	s := newScene(t)
	s.join(t, "a")
	s.join(t, "b")
	var buf bytes.Buffer
	kept, err := audit.Export(&buf, s.l, nil, cluster, s.key, nil) // what the auditor saw: 3 blocks
	if err != nil {
		t.Fatal(err)
	}
	small := buf.Bytes()
	s.join(t, "c")
	later := s.export(t, nil)

	// The same key, the same cluster, another history of as many blocks and more.
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Cluster: cluster, Signer: s.key, Verifier: s.key,
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	forged := &scene{l: l, key: s.key}
	forged.join(t, "b")
	forged.join(t, "a")
	forged.join(t, "c")
	rewritten := forged.export(t, nil)
	if _, err := forged.verify(rewritten); err != nil {
		t.Fatalf("the rewritten history alone must verify (it is signed by the CH key): %v", err)
	}

	if rep, err := audit.VerifyExportSince(bytes.NewReader(later), s.key.Thumbprint(), kept.Signed, nil); err != nil || rep.Checkpoint.Size != 4 {
		t.Fatalf("an honest later export against the kept checkpoint: %v", err)
	}
	later4, err := audit.VerifyExport(bytes.NewReader(later), s.key.Thumbprint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		export []byte
		kept   []byte
	}{
		"a rewritten history": {rewritten, kept.Signed},
		"a smaller export":    {small, later4.Checkpoint.Signed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := audit.VerifyExportSince(bytes.NewReader(c.export), s.key.Thumbprint(), c.kept, nil)
			var fork *transparency.ForkError
			if !errors.As(err, &fork) || string(fork.Old.Signed) != string(c.kept) || fork.New == nil {
				t.Fatalf("VerifyExportSince = %v, want a ForkError with the kept checkpoint", err)
			}
		})
	}
	// A checkpoint of the same tree with another time than its newest block's:
	// the CH signed what the chain contradicts.
	wrongTime, err := transparency.SignCheckpoint(s.key, cluster, kept.Size, kept.Root, int64(kept.TimeMS)+1)
	if err != nil {
		t.Fatal(err)
	}
	var fork *transparency.ForkError
	if _, err := audit.VerifyExportSince(bytes.NewReader(later), s.key.Thumbprint(), wrongTime, nil); !errors.As(err, &fork) {
		t.Fatalf("a kept checkpoint whose time is not its newest block's: %v, want a ForkError", err)
	}

	other := newScene(t) // another CH key
	var discard bytes.Buffer
	otherCP, err := audit.Export(&discard, other.l, nil, cluster, other.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifyExportSince(bytes.NewReader(later), s.key.Thumbprint(), otherCP.Signed, nil); !errors.Is(err, audit.ErrExport) {
		t.Fatalf("a kept checkpoint of another key: %v, want ErrExport", err)
	}
}

// TestVerifyExportCheckpointTime: a checkpoint states the time of the newest
// of its blocks (PROTOCOL.md §9.1); one over the export's very tree, signed
// by the CH key, with another time contradicts the chain and is refused.
// Before, only its size and root were checked.
func TestVerifyExportCheckpointTime(t *testing.T) {
	s := newScene(t)
	s.join(t, "a")
	ex := parseExport(t, s.export(t, nil))
	rep, err := s.verify(ex.encode(t))
	if err != nil {
		t.Fatal(err)
	}
	cp := rep.Checkpoint
	for name, at := range map[string]int64{"later": int64(cp.TimeMS) + 3_600_000, "earlier": int64(cp.TimeMS) - 1} {
		t.Run(name, func(t *testing.T) {
			signed, err := transparency.SignCheckpoint(s.key, cluster, cp.Size, cp.Root, at)
			if err != nil {
				t.Fatal(err)
			}
			ex.checkpoint = signed
			if _, err := s.verify(ex.encode(t)); !errors.Is(err, audit.ErrExport) || !strings.Contains(err.Error(), "time") {
				t.Fatalf("VerifyExport = %v, want ErrExport about the checkpoint's time", err)
			}
		})
	}
}
