package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
)

// TestImport: imported events land in blocks of at most MaxBatch events,
// chained and signed like appended ones (Verify passes), indexed, and
// followed by ordinary appends.
func TestImport(t *testing.T) {
	e := newEnv(t)
	l := e.open(t, func(o *ledger.Options) { o.MaxBatch = 8 })
	var evs []ledger.Event
	for i := range 30 {
		evs = append(evs, join(fmt.Sprintf("imported-%02d", i), fmt.Sprintf("k%d", i)))
	}
	evs = append(evs, ledger.Event{Type: ledger.EventLeave, Device: "imported-03", Time: 1_700_000_000_001})
	ref, err := l.Import(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Height != 4 { // 31 events in blocks of 8
		t.Fatalf("last block %d, want 4", ref.Height)
	}
	d, err := l.Lookup("imported-29")
	if err != nil || d.Status != membership.Member || d.Joined.Height != 4 || d.Joined != d.Updated {
		t.Fatalf("imported-29: %+v, %v", d, err)
	}
	if d, _ := l.Lookup("imported-03"); d.Status != membership.Left || d.Joined.Height != 1 || d.Updated != ref {
		t.Fatalf("imported-03: %+v", d)
	}
	mustAppend(t, l, join("appended", "k"))
	l.Close()
	ro := e.openReadOnly(t)
	if err := ro.Verify(context.Background(), nil); err != nil {
		t.Fatalf("Verify after import: %v", err)
	}
}

// TestImportAllOrNothing: one event the state machine rejects fails the
// whole import, and nothing of it is written.
func TestImportAllOrNothing(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("taken", "k1"))
	head, _, _ := l.Head()
	evs := []ledger.Event{join("fresh", "k2"), join("taken", "other-key")}
	if _, err := l.Import(context.Background(), evs); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("Import = %v, want ErrConflict", err)
	}
	if after, _, _ := l.Head(); after != head {
		t.Fatalf("head moved: %d → %d", head.Height, after.Height)
	}
	if _, err := l.Lookup("fresh"); !errors.Is(err, ledger.ErrUnknownDevice) {
		t.Fatalf("fresh was written: %v", err)
	}
}
