package wire_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// TestTupleIsCodec: a Tuple is the codec's encoding of the same array, at
// every length and value whose head differs (RFC 8949 §3.1: in the initial
// byte, one, two, four and eight bytes), and for an empty array.
func TestTupleIsCodec(t *testing.T) {
	if got, want := wire.NewTuple(0), testutil.MustMarshal(t, []any{}); !bytes.Equal(got, want) {
		t.Errorf("empty tuple = %x, want %x", got, want)
	}
	for _, n := range []uint64{0, 1, 23, 24, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		got := wire.NewTuple(1).Uint(n)
		if want := testutil.MustMarshal(t, []any{n}); !bytes.Equal(got, want) {
			t.Errorf("uint %d = %x, want %x", n, got, want)
		}
	}
	for _, n := range []int{0, 1, 23, 24, 255, 256, math.MaxUint16, math.MaxUint16 + 1} {
		s := strings.Repeat("é", n/2) + strings.Repeat("a", n%2) // n bytes of UTF-8
		b := bytes.Repeat([]byte{0xa5}, n)
		got := wire.NewTuple(3).Text(s).Bytes(b).Text("iotguard")
		if want := testutil.MustMarshal(t, []any{s, b, "iotguard"}); !bytes.Equal(got, want) {
			t.Errorf("items of %d bytes: tuple differs from the codec's encoding", n)
		}
	}
	items := make([]any, 24) // an array head of one more byte
	tuple := wire.NewTuple(len(items))
	for i := range items {
		items[i] = uint64(i)
		tuple = tuple.Uint(uint64(i))
	}
	if want := testutil.MustMarshal(t, items); !bytes.Equal(tuple, want) {
		t.Errorf("24 items = %x, want %x", tuple, want)
	}
}

// FuzzTuple: for any text, bytes and integer, a Tuple is the codec's
// encoding.
func FuzzTuple(f *testing.F) {
	f.Add("iotguard", []byte{0x01}, uint64(258))
	f.Add("", []byte{}, uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, s string, b []byte, n uint64) {
		want, err := wire.Marshal([]any{s, b, n})
		if err != nil {
			t.Skip() // the codec refuses it; a Tuple is only built from what it encodes
		}
		if got := wire.NewTuple(3).Text(s).Bytes(b).Uint(n); !bytes.Equal(got, want) {
			t.Fatalf("tuple %x, codec %x", got, want)
		}
	})
}

// TestNewAADAllocatesOnce: an Enc_structure takes one allocation, even
// over the longest external AAD protect builds (a ticket's, every ID at
// MaxIDLen).
func TestNewAADAllocatesOnce(t *testing.T) {
	id := strings.Repeat("m", wire.MaxIDLen)
	ext := wire.NewTuple(7).Text("iotguard ticket").Text(id).Bytes(make([]byte, wire.NonceLen)).Uint(math.MaxUint64).
		Text(id).Text(id).Text(id)
	if n := testing.AllocsPerRun(100, func() { wire.NewAAD(ext) }); n != 1 {
		t.Errorf("the Enc_structure over %d bytes: %v allocations, want 1", len(ext), n)
	}
}
