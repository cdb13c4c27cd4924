package replay_test

import (
	"encoding/binary"
	"testing"

	"github.com/iotguard/iotguard/replay"
)

// step is one sequence number offered to a window and whether it is accepted.
type step struct {
	seq uint64
	ok  bool
}

// run offers each seq to w as a receiver does: Fresh, then Mark if accepted.
func run(t *testing.T, w *replay.Window, steps []step) {
	t.Helper()
	for i, s := range steps {
		if got := w.Fresh(s.seq); got != s.ok {
			t.Fatalf("step %d: Fresh(%d) = %v, want %v", i, s.seq, got, s.ok)
		}
		if s.ok {
			w.Mark(s.seq)
		}
	}
}

func TestWindow(t *testing.T) {
	const max = 1<<40 - 1
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order from 0", []step{{0, true}, {1, true}, {2, true}, {3, true}}},
		{"first seq need not be 0", []step{{1000, true}, {1001, true}, {999, true}}},
		{"gaps", []step{{0, true}, {5, true}, {100, true}}},
		{"out of order within 64", []step{{10, true}, {70, true}, {69, true}, {40, true}, {7 + 64, true}, {11, true}}},
		{"duplicate", []step{{5, true}, {5, false}}},
		{"duplicate of the highest after others", []step{{5, true}, {6, true}, {6, false}, {5, false}}},
		{"duplicate out of order", []step{{10, true}, {8, true}, {8, false}, {9, true}, {9, false}}},
		{"63 below the highest is inside", []step{{100, true}, {37, true}, {37, false}}},
		{"64 below the highest is too old", []step{{100, true}, {36, false}}},
		{"far too old", []step{{1000, true}, {0, false}, {500, false}}},
		{"big jump forgets the old window", []step{{0, true}, {1, true}, {1000, true}, {1, false}, {937, true}, {936, false}}},
		{"jump of exactly 64", []step{{0, true}, {64, true}, {0, false}, {1, true}, {1, false}}},
		{"jump of 63 keeps the oldest bit", []step{{0, true}, {63, true}, {0, false}, {1, true}}},
		{"old seq never seen before the jump stays rejected", []step{{0, true}, {200, true}, {136, false}, {137, true}}},
		{"largest seq", []step{{max - 1, true}, {max, true}, {max, false}, {max - 1, false}, {max - 2, true}}},
		{"zero window accepts 0", []step{{0, true}, {0, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w replay.Window
			run(t, &w, tc.steps)
		})
	}
}

func TestWindowFreshDoesNotRecord(t *testing.T) {
	var w replay.Window
	for range 3 {
		if !w.Fresh(7) {
			t.Fatal("Fresh(7) on an empty window = false")
		}
	}
	w.Mark(7)
	for range 3 {
		if !w.Fresh(6) || !w.Fresh(8) {
			t.Fatal("Fresh recorded a seq")
		}
	}
}

func TestWindowSize(t *testing.T) {
	if replay.Size != 64 {
		t.Fatalf("replay.Size = %d, PROTOCOL.md §4.2 says 64", replay.Size)
	}
	// Every one of the Size numbers up to the highest is remembered, none beyond.
	var w replay.Window
	for seq := range uint64(replay.Size) {
		w.Mark(seq)
	}
	for seq := range uint64(replay.Size) {
		if w.Fresh(seq) {
			t.Errorf("Fresh(%d) after marking 0..63 = true", seq)
		}
	}
	w.Mark(replay.Size)
	if w.Fresh(0) {
		t.Error("0 is fresh again after the window moved past it")
	}
}

// model is the specification of a window as a set: a seq is fresh iff not
// seen and within Size-1 of the highest seen (or above it).
type model struct {
	seen map[uint64]bool
	high uint64
}

func (m *model) fresh(seq uint64) bool {
	if len(m.seen) == 0 || seq > m.high {
		return true
	}
	return !m.seen[seq] && m.high-seq < replay.Size
}

func (m *model) mark(seq uint64) {
	if len(m.seen) == 0 || seq > m.high {
		m.high = seq
	}
	m.seen[seq] = true
}

// FuzzWindow checks Window against the set model for sequences of moves:
// each 2 bytes of input is a signed step from the last offered seq.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0xff, 0xff, 0, 64, 0xff, 0xc0})
	f.Add([]byte{0x7f, 0xff, 0x80, 0x01, 0, 0})
	f.Add([]byte{0, 63, 0xff, 0xc1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w replay.Window
		m := model{seen: map[uint64]bool{}}
		seq := uint64(1 << 20)
		for i := 0; i+1 < len(b); i += 2 {
			seq += uint64(int64(int16(binary.BigEndian.Uint16(b[i:]))))
			want := m.fresh(seq)
			if got := w.Fresh(seq); got != want {
				t.Fatalf("move %d: Fresh(%d) = %v, model says %v", i/2, seq, got, want)
			}
			if want {
				w.Mark(seq)
				m.mark(seq)
			}
		}
	})
}

// TestWindowRestart: after Restart(n) nothing at or below n is fresh, however
// close to n; numbers above it are accepted once, and the window slides on
// from there as usual.
func TestWindowRestart(t *testing.T) {
	var w replay.Window
	run(t, &w, []step{{5, true}, {6, true}})
	w.Restart(6)
	run(t, &w, []step{{0, false}, {1, false}, {5, false}, {6, false}, {7, true}, {7, false}, {9, true}, {8, true}, {8, false}})
	var fresh replay.Window // a restart of a window that never started
	fresh.Restart(100)
	run(t, &fresh, []step{{37, false}, {99, false}, {100, false}, {101, true}, {200, true}, {150, true}, {136, false}})
}
