package ledger_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// realBlocks returns the encoded blocks of a small ledger holding every event
// type.
func realBlocks(t testing.TB) [][]byte {
	t.Helper()
	e := newEnv(t)
	l := e.open(t)
	for _, ev := range []ledger.Event{join("a", "ka"), join("b", "kb"), session("a", "b"),
		warning("a", "c"), leave("a"), revoke("b")} {
		mustAppend(t, l, ev)
	}
	var out [][]byte
	for _, b := range allBlocks(t, l) {
		raw, err := ledger.EncodeBlock(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

func TestDecodeBlock(t *testing.T) {
	blocks := realBlocks(t)
	good := blocks[1]
	blk, err := ledger.DecodeBlock(good)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[int]any{1: blk.Header.Height, 2: blk.Header.Prev[:], 3: blk.Header.Time, 4: blk.Header.Cluster,
		5: blk.Header.Events[:]}
	ev := map[int]any{1: 2, 2: "a", 3: 1}
	with := func(m map[int]any, k int, v any) map[int]any {
		c := map[int]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	enc := func(v any) []byte {
		b, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tooMany := make([]any, ledger.MaxBatchLimit+1)
	for i := range tooMany {
		tooMany[i] = ev
	}

	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"real block", good, true},
		{"genesis", blocks[0], true},
		{"rebuilt from parts", enc(map[int]any{1: hdr, 2: []any{ev}, 3: blk.Sig}), true},
		{"empty", nil, false},
		{"trailing byte", append(bytes.Clone(good), 0), false},
		{"truncated", good[:len(good)-1], false},
		{"not a map", enc([]any{1, 2, 3}), false},
		{"events null", enc(map[int]any{1: hdr, 2: nil, 3: blk.Sig}), false},
		{"events missing", enc(map[int]any{1: hdr, 3: blk.Sig}), false},
		{"unknown block field", enc(map[int]any{1: hdr, 2: []any{ev}, 3: blk.Sig, 4: 0}), false},
		{"unknown header field", enc(map[int]any{1: with(hdr, 6, 0), 2: []any{ev}, 3: blk.Sig}), false},
		{"unknown event field", enc(map[int]any{1: hdr, 2: []any{with(ev, 14, 0)}, 3: blk.Sig}), false},
		{"explicit zero optional field", enc(map[int]any{1: hdr, 2: []any{with(ev, 7, 0)}, 3: blk.Sig}), false},
		{"short prev hash", enc(map[int]any{1: with(hdr, 2, make([]byte, 31)), 2: []any{ev}, 3: blk.Sig}), false},
		{"long events hash", enc(map[int]any{1: with(hdr, 5, make([]byte, 33)), 2: []any{ev}, 3: blk.Sig}), false},
		{"event type out of range", enc(map[int]any{1: hdr, 2: []any{with(ev, 1, 256)}, 3: blk.Sig}), false},
		{"string keys", enc(map[string]any{"1": hdr, "2": []any{ev}, "3": blk.Sig}), false},
		{"more events than the wire allows", enc(map[int]any{1: hdr, 2: tooMany, 3: blk.Sig}), false},
		{"non-minimal map key", append([]byte{0xa3, 0x18, 0x01}, good[2:]...), false},
		{"tagged", append([]byte{0xd8, 0x18}, good...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ledger.DecodeBlock(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("DecodeBlock = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Errorf("error %v does not wrap wire.ErrMalformed", err)
				}
				return
			}
			again, err := ledger.EncodeBlock(got)
			if err != nil || !bytes.Equal(again, tt.in) {
				t.Errorf("EncodeBlock(DecodeBlock(b)) != b (%v)", err)
			}
		})
	}
}

func TestHeaderHash(t *testing.T) {
	h := ledger.Header{Height: 7, Time: 42, Cluster: "c"}
	a, err := h.Hash()
	if err != nil {
		t.Fatal(err)
	}
	tests := []func(*ledger.Header){
		func(h *ledger.Header) { h.Height++ },
		func(h *ledger.Header) { h.Prev[31] = 1 },
		func(h *ledger.Header) { h.Time++ },
		func(h *ledger.Header) { h.Cluster = "d" },
		func(h *ledger.Header) { h.Events[0] = 1 },
	}
	for i, mod := range tests {
		h2 := h
		mod(&h2)
		if b, _ := h2.Hash(); b == a {
			t.Errorf("change %d does not change the hash", i)
		}
	}
	if b, _ := h.Hash(); b != a {
		t.Error("hash is not deterministic")
	}
	e1, _ := ledger.HashEvents(nil)
	e2, _ := ledger.HashEvents([]ledger.Event{})
	if e1 != e2 {
		t.Error("HashEvents(nil) != HashEvents(empty)")
	}
}

func FuzzDecodeBlock(f *testing.F) {
	for _, b := range realBlocks(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := ledger.DecodeBlock(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error %v does not wrap wire.ErrMalformed", err)
			}
			return
		}
		// One byte string per block: what decodes re-encodes to itself.
		again, err := ledger.EncodeBlock(blk)
		if err != nil {
			t.Fatalf("EncodeBlock of a decoded block: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
		if _, err := blk.Header.Hash(); err != nil {
			t.Fatal(err)
		}
	})
}
