package keysvc_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzEchoFresh: echo values come from the network (join key 7, plaintext key
// 9). Property: no panic, and only a value this Service made for that address
// within the lifetime is fresh, and its height is the one it was made with.
func FuzzEchoFresh(f *testing.F) {
	s := newService(f)
	f.Add(s.Echo("192.0.2.1:5683", now, 0), "192.0.2.1:5683", int64(0))
	f.Add(s.Echo("192.0.2.1:5683", now, 1<<63), "192.0.2.1:5683", int64(61))
	f.Add([]byte{}, "", int64(0))
	f.Add(make([]byte, 40), "[2001:db8::1]:5683", int64(-1))
	f.Fuzz(func(t *testing.T, echo []byte, addr string, offset int64) {
		at := now.Add(time.Duration(offset%1000) * time.Second)
		height, fresh := s.EchoFresh(echo, addr, at)
		if !fresh {
			return
		}
		if len(echo) < 4 {
			t.Fatalf("fresh echo of %d bytes", len(echo))
		}
		made := time.Unix(int64(binary.BigEndian.Uint32(echo)), 0)
		if !bytes.Equal(echo, s.Echo(addr, made, height)) {
			t.Fatalf("EchoFresh accepted %x, which Echo(%q, %v, %d) did not make", echo, addr, made, height)
		}
		if age := at.Sub(made); age < 0 || age > 60*time.Second {
			t.Fatalf("EchoFresh accepted an echo of age %v", age)
		}
	})
}
