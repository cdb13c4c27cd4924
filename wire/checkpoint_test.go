package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

func hashes(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i + 1)}, 32)
	}
	return out
}

// transparencyMessages are valid instances of the transparency messages.
func transparencyMessages() map[string]wire.Validator {
	root := bytes.Repeat([]byte{7}, 32)
	return map[string]wire.Validator{
		"Checkpoint":       &wire.Checkpoint{Cluster: "cluster-1", Size: 11, Root: root, TimeMS: 1_700_000_000_000},
		"InclusionProof":   &wire.InclusionProof{Checkpoint: []byte{0x84}, Index: 7, BlockHash: root, Path: hashes(4), OldSize: 5, Consistency: hashes(3)},
		"ConsistencyProof": &wire.ConsistencyProof{Checkpoint: []byte{0x84}, OldSize: 5, OldRoot: root, Path: hashes(3)},
		"ExportHeader": &wire.ExportHeader{Format: wire.ExportFormat, Version: wire.ExportVersion, Cluster: "cluster-1", Key: []byte{0xa0}, Blocks: 3, Grants: 2,
			Earlier: []cbor.RawMessage{{0xa0}}},
		"ExportGrants": &wire.ExportGrants{Batch: 4, Count: 100},
	}
}

// TestTransparencyMessages: each message round-trips, and each field out of
// its range is malformed with a message that says which.
func TestTransparencyMessages(t *testing.T) {
	for name, m := range transparencyMessages() {
		b := testutil.MustMarshal(t, m)
		v := reflect.New(reflect.TypeOf(m).Elem()).Interface().(wire.Validator)
		if err := wire.Decode(b, v); err != nil || !reflect.DeepEqual(v, m) {
			t.Errorf("%s: round trip %+v, %v", name, v, err)
		}
	}
	root := bytes.Repeat([]byte{7}, 32)
	for _, c := range []struct {
		name string
		m    wire.Validator
		want string
	}{
		{"checkpoint of size 0", &wire.Checkpoint{Cluster: "c", Root: root}, "at least 1"},
		{"checkpoint root of 31 bytes", &wire.Checkpoint{Cluster: "c", Size: 1, Root: root[1:]}, "root must be 32 bytes"},
		{"checkpoint of a bad cluster ID", &wire.Checkpoint{Cluster: "c/1", Size: 1, Root: root}, "id has a byte"},
		{"path hash of 33 bytes", &wire.InclusionProof{Checkpoint: []byte{1}, BlockHash: root, Path: [][]byte{append(root, 0)}}, "proof hash 0 is 33 bytes"},
		{"path of 64 hashes", &wire.InclusionProof{Checkpoint: []byte{1}, BlockHash: root, Path: hashes(64)}, "64 hashes, at most 63"},
		{"consistency without old size", &wire.InclusionProof{Checkpoint: []byte{1}, BlockHash: root, Consistency: hashes(1)}, "without an old tree size"},
		{"proof without checkpoint", &wire.InclusionProof{BlockHash: root}, "checkpoint missing"},
		{"consistency from size 0", &wire.ConsistencyProof{Checkpoint: []byte{1}, OldRoot: root}, "old tree size"},
		{"export of another format", &wire.ExportHeader{Format: "x", Version: 1, Cluster: "c", Key: []byte{1}, Blocks: 1}, "not an IoT-Guard ledger export"},
		{"export version 4", &wire.ExportHeader{Format: wire.ExportFormat, Version: 4, Cluster: "c", Key: []byte{1}, Blocks: 1}, "export version 4"},
		{"earlier keys in a version 2 export", &wire.ExportHeader{Format: wire.ExportFormat, Version: 2, Cluster: "c", Key: []byte{1}, Blocks: 1,
			Earlier: []cbor.RawMessage{{1}}}, "earlier CH keys in a version 1 or 2 export"},
		{"grants in a version 1 export", &wire.ExportHeader{Format: wire.ExportFormat, Version: 1, Cluster: "c", Key: []byte{1}, Blocks: 1, Grants: 1}, "version 1 export"},
		{"grant batch 0", &wire.ExportGrants{Count: 1}, "at least 1"},
		{"grant batch without records", &wire.ExportGrants{Batch: 1}, "without records"},
	} {
		err := c.m.Validate()
		if !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want malformed: %s", c.name, err, c.want)
		}
	}
}

// FuzzDecodeTransparency: the decoders of the transparency messages (the
// first byte picks one) never panic, fail only with ErrMalformed, and what
// they accept re-encodes stably.
func FuzzDecodeTransparency(f *testing.F) {
	names := []string{"Checkpoint", "InclusionProof", "ConsistencyProof", "ExportHeader", "ExportGrants"}
	valid := transparencyMessages()
	for i, n := range names {
		f.Add(byte(i), testutil.MustMarshal(f, valid[n]))
		for _, s := range testutil.VectorSeeds(f, "../testdata/vectors") {
			f.Add(byte(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, sel byte, b []byte) {
		proto := valid[names[int(sel)%len(names)]]
		v := reflect.New(reflect.TypeOf(proto).Elem()).Interface().(wire.Validator)
		if err := wire.Decode(b, v); err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		re := testutil.MustMarshal(t, v)
		v2 := reflect.New(reflect.TypeOf(proto).Elem()).Interface().(wire.Validator)
		if err := wire.Decode(re, v2); err != nil {
			t.Fatalf("%T: re-encoded %x does not decode: %v", v, re, err)
		}
		if re2 := testutil.MustMarshal(t, v2); !bytes.Equal(re, re2) {
			t.Fatalf("%T: re-encoding is not stable", v)
		}
	})
}
