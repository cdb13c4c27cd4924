package protect_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// TestWycheproofHKDF runs Wycheproof's HKDF-SHA-256 vectors (C2SP/wycheproof,
// testdata/wycheproof/hkdf_sha256_test.json) through crypto/hkdf.Key called
// exactly as this package calls it for K_m, the member keys and the M2M keys:
// hkdf.Key(sha256.New, ikm, salt, info, length). Valid cases must give the
// vector's output; invalid ones (a length over 255 × 32 bytes) must fail.
func TestWycheproofHKDF(t *testing.T) {
	raw, err := os.ReadFile("../testdata/wycheproof/hkdf_sha256_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Algorithm     string `json:"algorithm"`
		NumberOfTests int    `json:"numberOfTests"`
		TestGroups    []struct {
			Tests []struct {
				TcID    int      `json:"tcId"`
				Comment string   `json:"comment"`
				Flags   []string `json:"flags"`
				IKM     string   `json:"ikm"`
				Salt    string   `json:"salt"`
				Info    string   `json:"info"`
				Size    int      `json:"size"`
				OKM     string   `json:"okm"`
				Result  string   `json:"result"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f.Algorithm != "HKDF-SHA-256" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var n, valid int
	for _, g := range f.TestGroups {
		for _, c := range g.Tests {
			n++
			okm, err := hkdf.Key(sha256.New, unhex(c.IKM), unhex(c.Salt), string(unhex(c.Info)), c.Size)
			switch c.Result {
			case "valid":
				valid++
				if err != nil || !bytes.Equal(okm, unhex(c.OKM)) {
					t.Errorf("tcId %d (%s %v): %x, %v; want %s", c.TcID, c.Comment, c.Flags, okm, err, c.OKM)
				}
			case "invalid":
				if err == nil {
					t.Errorf("tcId %d (%s %v): derived %d bytes", c.TcID, c.Comment, c.Flags, len(okm))
				}
			default:
				t.Fatalf("tcId %d: result %q", c.TcID, c.Result)
			}
		}
	}
	if n != f.NumberOfTests || valid == 0 {
		t.Fatalf("%d cases (%d valid), the file says %d", n, valid, f.NumberOfTests)
	}
}
