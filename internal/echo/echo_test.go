package echo_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/echo"
	"github.com/iotguard/iotguard/wire"
)

var now = time.Unix(1_700_000_000, 0)

func TestEcho(t *testing.T) {
	s, other := echo.New(), echo.New()
	const addr = "192.0.2.1:5683"
	const height = 1<<40 + 7
	e := s.Echo(addr, now, height)
	if len(e) != echo.Len || len(e) > wire.MaxEchoLen {
		t.Fatalf("echo of %d bytes; want %d, and an echo option holds 1-40", len(e), echo.Len)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(e)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name  string
		echo  []byte
		addr  string
		at    time.Time
		fresh bool
	}{
		{"fresh", e, addr, now, true},
		{"59 s later", e, addr, now.Add(59 * time.Second), true},
		{"60 s later", e, addr, now.Add(echo.Lifetime), true},
		{"61 s later", e, addr, now.Add(61 * time.Second), false},
		{"a day later", e, addr, now.Add(24 * time.Hour), false},
		{"from the future", e, addr, now.Add(-time.Second), false},
		{"another address", e, "192.0.2.2:5683", now, false},
		{"another port", e, "192.0.2.1:5684", now, false},
		{"time tampered", flip(3), addr, now, false},
		{"height tampered", flip(11), addr, now, false},
		{"MAC tampered", flip(len(e) - 1), addr, now, false},
		{"truncated", e[:len(e)-1], addr, now, false},
		{"extended", append(bytes.Clone(e), 0), addr, now, false},
		{"empty", nil, addr, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, fresh := s.EchoFresh(tc.echo, tc.addr, tc.at)
			if fresh != tc.fresh {
				t.Errorf("EchoFresh = %v, want %v", fresh, tc.fresh)
			}
			if want := uint64(0); fresh {
				if h != height {
					t.Errorf("EchoFresh height = %d, want %d", h, uint64(height))
				}
			} else if h != want {
				t.Errorf("EchoFresh of a refused echo returned height %d", h)
			}
		})
	}
	// Echoes do not survive the process: another Issuer (a restart) refuses them.
	if _, fresh := other.EchoFresh(e, addr, now); fresh {
		t.Error("another Issuer accepted the echo")
	}
	// Stateless: the same (address, second, height) gives the same value.
	if !bytes.Equal(e, s.Echo(addr, now, height)) {
		t.Error("Echo is not a function of (address, time, height)")
	}
	if bytes.Equal(e, s.Echo(addr, now, height+1)) {
		t.Error("Echo does not depend on the height")
	}
	// Stamp reads what a value claims, for anyone (a validator) without the key.
	if at, h, ok := echo.Stamp(e); !ok || at != now.Unix() || h != height {
		t.Errorf("Stamp = %d %d %v, want %d %d true", at, h, ok, now.Unix(), uint64(height))
	}
	if _, _, ok := echo.Stamp(e[1:]); ok {
		t.Error("Stamp accepted a value of the wrong length")
	}
}

// FuzzEchoFresh: echo values come from the network (the Echo option, join key
// 7, plaintext key 9). Property: no panic, and only a value this Issuer made
// for that address within the lifetime is fresh, with the height it was made
// with; Stamp reads a value of an echo's length only, and a fresh one's time
// and height as EchoFresh does.
func FuzzEchoFresh(f *testing.F) {
	s := echo.New()
	f.Add(s.Echo("192.0.2.1:5683", now, 0), "192.0.2.1:5683", int64(0))
	f.Add(s.Echo("192.0.2.1:5683", now, 1<<63), "192.0.2.1:5683", int64(61))
	f.Add([]byte{}, "", int64(0))
	f.Add(make([]byte, 40), "[2001:db8::1]:5683", int64(-1))
	f.Fuzz(func(t *testing.T, e []byte, addr string, offset int64) {
		at := now.Add(time.Duration(offset%1000) * time.Second)
		height, fresh := s.EchoFresh(e, addr, at)
		sec, stamped, ok := echo.Stamp(e) // what a validator reads, without the key
		if ok != (len(e) == echo.Len) || (fresh && (!ok || stamped != height || sec != int64(binary.BigEndian.Uint32(e)))) {
			t.Fatalf("Stamp(%x) = %d %d %v; EchoFresh: height %d, fresh %v", e, sec, stamped, ok, height, fresh)
		}
		if !fresh {
			return
		}
		if len(e) < 4 {
			t.Fatalf("fresh echo of %d bytes", len(e))
		}
		made := time.Unix(int64(binary.BigEndian.Uint32(e)), 0)
		if !bytes.Equal(e, s.Echo(addr, made, height)) {
			t.Fatalf("EchoFresh accepted %x, which Echo(%q, %v, %d) did not make", e, addr, made, height)
		}
		if age := at.Sub(made); age < 0 || age > echo.Lifetime {
			t.Fatalf("EchoFresh accepted an echo of age %v", age)
		}
	})
}

func BenchmarkEcho(b *testing.B) {
	s := echo.New()
	e := s.Echo("127.0.0.1:5683", now, 1000)
	b.Run("Make", func(b *testing.B) {
		for b.Loop() {
			s.Echo("127.0.0.1:5683", now, 1000)
		}
	})
	b.Run("Check", func(b *testing.B) {
		for b.Loop() {
			if _, fresh := s.EchoFresh(e, "127.0.0.1:5683", now); !fresh {
				b.Fatal("echo not fresh")
			}
		}
	})
}
