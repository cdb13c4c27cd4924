package protect_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// Fuzz targets for protect's decoders, seeded with every byte field of the
// shared vectors. Properties: no panic, every error is ErrMalformed (or
// ErrDecrypt from Open), and what parses has a canonical header.

func FuzzParseRequest(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, vectorDir) {
		f.Add(s)
	}
	k := memberKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := protect.ParseRequest(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseRequest error %v is not ErrMalformed", err)
			}
			return
		}
		if err := wire.CheckID(r.KID); err != nil {
			t.Fatalf("accepted kid %q: %v", r.KID, err)
		}
		if r.Seq > protect.MaxSeq {
			t.Fatalf("accepted seq %d > MaxSeq", r.Seq)
		}
		pt, err := r.Open(&k, vecCluster, vecPath)
		if err != nil && !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("Open error %v is not ErrDecrypt", err)
		}
		if err == nil {
			// Only a genuine request opens; resealing it gives the same bytes.
			again, err := protect.SealRequest(&k, vecCluster, r.KID, r.Seq, vecPath, pt)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := protect.ParseRequest(again)
			if err != nil || r2.KID != r.KID || r2.Seq != r.Seq {
				t.Fatalf("resealed request parses as %+v, %v", r2, err)
			}
		}
	})
}

func FuzzParseM2M(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, vectorDir) {
		f.Add(s)
	}
	keys := protect.DeriveM2M([wire.KeySize]byte(vecSk), vecSID, vecM1)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protect.ParseM2M(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseM2M error %v is not ErrMalformed", err)
			}
			return
		}
		if err := wire.CheckID(m.Sender); err != nil || len(m.SID) != wire.NonceLen || m.Seq > protect.MaxSeq {
			t.Fatalf("accepted sender %q sid %x seq %d", m.Sender, m.SID, m.Seq)
		}
		if _, err := m.Open(keys, vecM2); err != nil && !errors.Is(err, wire.ErrDecrypt) {
			t.Fatalf("Open error %v is not ErrDecrypt", err)
		}
	})
}

func FuzzDecodePartialIV(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, vectorDir) {
		if len(s) <= 8 {
			f.Add(s)
		}
	}
	for _, s := range [][]byte{{}, {0}, {0, 1}, {1, 0}, {0xff, 0xff, 0xff, 0xff, 0xff}, {1, 0, 0, 0, 0, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, err := protect.DecodePartialIV(b)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("DecodePartialIV error %v is not ErrMalformed", err)
			}
			return
		}
		if seq > protect.MaxSeq {
			t.Fatalf("DecodePartialIV(%x) = %d > MaxSeq", b, seq)
		}
		// Strict inverse: every seq has exactly one encoding.
		if enc := protect.EncodePartialIV(seq); !bytes.Equal(enc, b) {
			t.Fatalf("DecodePartialIV(%x) = %d, which encodes as %x", b, seq, enc)
		}
	})
}
