// Package testutil holds the helpers that tests of several packages share.
package testutil

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iotguard/iotguard/wire"
)

// MustHex decodes s or fails the test.
func MustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustMarshal encodes v with the protocol's CBOR encoding or fails the test.
func MustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// VectorSeeds returns every hex byte field of the shared vectors in dir
// (testdata/vectors, relative to the test's package): seeds for the fuzz
// targets. It fails the test when there are none.
func VectorSeeds(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var seeds [][]byte
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			if b, err := hex.DecodeString(v); err == nil && v != "" {
				seeds = append(seeds, b)
			}
		}
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		walk(v)
	}
	if len(seeds) == 0 {
		tb.Fatalf("no seeds in %s (generate with: go test ./protect -run TestVectors -update)", dir)
	}
	return seeds
}

// Tool returns the path of the program name, which the Debian package pkg
// installs ('make deps'). A missing program skips the test on a developer
// machine but fails it under CI, where it must have been installed.
func Tool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if ci := os.Getenv("CI"); ci != "" {
			tb.Fatalf("%s not found and CI=%s: install the Debian package %s (%v)", name, ci, pkg, err)
		}
		tb.Skipf("%s not found: install the Debian package %s to run this test (%v)", name, pkg, err)
	}
	return p
}
