package keysvc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/iotguard/iotguard/keysvc"
)

func TestOpenCreatesKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	s, err := keysvc.Open(dir, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, keysvc.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if dst, err := os.Stat(dir); err != nil || dst.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory mode %v (%v), want no group/other access", dst.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("data directory holds %v (%v), want only %s", entries, err, keysvc.KeyFile)
	}

	// Reload: the same key, not a new one.
	again, err := keysvc.Open(dir, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.PublicKey().Equal(s.PublicKey()) || again.Thumbprint() != s.Thumbprint() {
		t.Error("reopening gave another key")
	}
	loaded, err := keysvc.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.PublicKey().Equal(s.PublicKey()) {
		t.Error("Load gave another key")
	}
	// Two data directories, two keys.
	other, err := keysvc.Open(t.TempDir(), "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if other.PublicKey().Equal(s.PublicKey()) {
		t.Error("two fresh data directories got the same key")
	}
}

func TestKeyFilePermissions(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, false},
		{0o644, false},
		{0o604, false},
		{0o660, false},
		{0o666, false},
		{0o601, false},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := keysvc.Open(dir, "cluster-1"); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, keysvc.KeyFile)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			for name, open := range map[string]func() error{
				"Open": func() error { _, err := keysvc.Open(dir, "cluster-1"); return err },
				"Load": func() error { _, err := keysvc.Load(dir); return err },
			} {
				err := open()
				if tc.ok && err != nil {
					t.Errorf("%s with mode %v: %v", name, tc.mode, err)
				}
				if !tc.ok && !errors.Is(err, keysvc.ErrKeyPermissions) {
					t.Errorf("%s with mode %v = %v, want ErrKeyPermissions", name, tc.mode, err)
				}
			}
			// A refused key file is left alone, not replaced by a new key.
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != tc.mode {
				t.Errorf("key file touched: %v, %v", st, err)
			}
		})
	}
}

func TestLoadWithoutKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := keysvc.Load(dir); !errors.Is(err, keysvc.ErrNoKey) {
		t.Fatalf("Load(empty dir) = %v, want ErrNoKey", err)
	}
	if _, err := keysvc.Load(filepath.Join(dir, "missing")); !errors.Is(err, keysvc.ErrNoKey) {
		t.Fatalf("Load(missing dir) = %v, want ErrNoKey", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Load created %v", entries)
	}
}

func writeKeyFile(t *testing.T, dir string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, keysvc.KeyFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsBadKeyFiles(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der384, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"empty":                      nil,
		"not PEM":                    []byte("not a key"),
		"P-384 key":                  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}),
		"SEC 1 PEM (EC PRIVATE KEY)": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"PKCS#8 type, garbage body":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x00}}),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeyFile(t, dir, data)
			if s, err := keysvc.Open(dir, "cluster-1"); err == nil {
				t.Fatalf("Open accepted it: key %v", s.PublicKey())
			}
			if got, _ := os.ReadFile(filepath.Join(dir, keysvc.KeyFile)); string(got) != string(data) {
				t.Error("Open replaced a bad key file")
			}
		})
	}
}

// TestOpenConcurrentFirstStart: cluster heads started at once on a new data
// directory (a service and a manual start) each open the key; every one of
// them must hold the key the file ends up with. A second key written over
// the first would leave the first CH signing its new ledger with a key no
// file holds: at its next start the ledger would be refused, and every
// membership lost with that key.
func TestOpenConcurrentFirstStart(t *testing.T) {
	const rounds, starters = 50, 8
	for range rounds {
		dir := filepath.Join(t.TempDir(), "data")
		thumbs := make(chan [32]byte, starters)
		errs := make(chan error, starters)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range starters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s, err := keysvc.Open(dir, "cluster-1")
				if err != nil {
					errs <- err
					return
				}
				thumbs <- s.Thumbprint()
				s.Close()
			}()
		}
		close(start)
		wg.Wait()
		close(thumbs)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		onDisk, err := keysvc.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		for th := range thumbs {
			if th != onDisk.Thumbprint() {
				t.Fatalf("a starter holds key %x, the file %x: its key was replaced", th[:8], onDisk.Thumbprint())
			}
		}
	}
}
