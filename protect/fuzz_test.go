package protect_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

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
	keys, _ := protect.DeriveM2M([wire.KeySize]byte(vecSk), vecSID, vecM1, vecM2)
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

// FuzzTalkProof decodes arbitrary bytes as a hello and checks its talk proof
// as the CH does for the responder it names, at the proof's own time (so
// freshness never hides a tag check). Properties: no panic; every error is
// ErrMalformed, ErrStale or ErrDecrypt; only a proof the talk key made
// verifies.
func FuzzTalkProof(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, vectorDir) {
		f.Add(s)
	}
	k := memberKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h wire.Hello
		if err := wire.Decode(b, &h); err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("Decode hello error %v is not ErrMalformed", err)
			}
			return
		}
		if h.Proof == nil {
			return
		}
		now := time.Unix(int64(min(h.Proof.Time, 1<<40)), 0)
		err := protect.VerifyTalkProof(k.Talk, vecCluster, h.ID, h.Responder, h.Proof, now)
		switch {
		case err == nil:
			again, err := protect.SealTalkProof(k.Talk, vecCluster, h.ID, h.Responder, [wire.NonceSize]byte(h.Proof.Nonce), h.Proof.Time)
			if err != nil || !bytes.Equal(again.Tag, h.Proof.Tag) {
				t.Fatalf("a proof verified that the talk key did not make: %+v", h)
			}
		case !errors.Is(err, wire.ErrDecrypt) && !errors.Is(err, protect.ErrStale):
			t.Fatalf("VerifyTalkProof error %v is neither ErrDecrypt nor ErrStale", err)
		}
	})
}

func FuzzOpenRefusal(f *testing.F) {
	for _, s := range testutil.VectorSeeds(f, vectorDir) {
		f.Add(s)
	}
	k := memberKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		diag, err := protect.OpenRefusal(&k, vecCluster, vecM1, vecReqSeq, vecPath, b)
		switch {
		case err != nil && !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrDecrypt):
			t.Fatalf("OpenRefusal error %v is neither ErrMalformed nor ErrDecrypt", err)
		case err == nil && len(diag) > wire.MaxRefusal:
			t.Fatalf("opened a diagnostic of %d bytes", len(diag))
		}
	})
}
