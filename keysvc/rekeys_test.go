package keysvc_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// TestRekeyRecorded: a member's first request under its new K_m after a
// rotation is recorded before it is answered, and only that: forged
// requests and requests under the old K_m write nothing. When the record
// cannot be written the request is refused (ErrRekeyNotRecorded) and the
// member stays on its join's key. After a restart the old K_m is refused
// and the member's PSK is its new K_m's; a member that did not re-key
// keeps its join's.
func TestRekeyRecorded(t *testing.T) {
	dir := t.TempDir()
	s, err := keysvc.Open(dir, cluster)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := newDevice(t, "sensor-01", 0x40), newDevice(t, "sensor-02", 0x50)
	old1, old2 := d1.keys(t, s), d2.keys(t, s)
	rotateAt(t, s, dir, 10)
	new1 := d1.keys(t, s)
	seq := uint64(0)
	open := func(s *keysvc.Service, k *protect.MemberKeys, forged bool) error {
		seq++
		_, err := s.OpenRequest(d1.member, sealRequest(t, k, d1.member.ID, seq, forged), protect.PathVerify)
		return err
	}
	record := filepath.Join(dir, keysvc.RekeyFile)

	if err := open(s, &new1, true); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("forged request under the new K_m: %v, want ErrDecrypt", err)
	}
	if err := open(s, &old1, false); err != nil {
		t.Fatalf("request under the old K_m: %v", err)
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s after a forged request and one under the old K_m: %v, want none", keysvc.RekeyFile, err)
	}

	if err := os.Mkdir(record, 0o700); err != nil { // a file that cannot be opened
		t.Fatal(err)
	}
	if err := open(s, &new1, false); !errors.Is(err, keysvc.ErrRekeyNotRecorded) {
		t.Fatalf("re-key that cannot be recorded: %v, want ErrRekeyNotRecorded", err)
	}
	if err := open(s, &old1, false); err != nil {
		t.Fatalf("old K_m after a re-key that was not recorded: %v, want it still in force", err)
	}
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
	}
	if err := open(s, &new1, false); err != nil {
		t.Fatalf("request under the new K_m: %v", err)
	}
	if err := open(s, &old1, false); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("old K_m after the re-key: %v, want ErrDecrypt", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = keysvc.OpenExisting(dir, cluster) // a restart
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := open(s, &old1, false); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatalf("old K_m after a restart: %v, want ErrDecrypt", err)
	}
	if err := open(s, &new1, false); err != nil {
		t.Fatalf("new K_m after a restart: %v", err)
	}
	for _, c := range []struct {
		m    keysvc.Member
		want *protect.MemberKeys
	}{{d1.member, &new1}, {d2.member, &old2}} {
		if psk, err := s.PSK(c.m); err != nil || !bytes.Equal(psk, c.want.PSK[:]) {
			t.Fatalf("PSK of %s after a restart: %x %v, want %x", c.m.ID, psk, err, c.want.PSK)
		}
	}
}
