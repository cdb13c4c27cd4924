package atomicfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/atomicfile"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestCreateFromRemovesLeftovers: a temporary file that a killed writer
// of the same path left (here made by hand, as SIGKILL leaves
// it) is removed by the next CreateFrom: it may hold a copy of the CH key.
// Other files stay.
func TestCreateFromRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	for _, name := range []string{".b.tar.tmp123", ".other.tar.tmp9", "b.tar.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := atomicfile.CreateFrom(out, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "archive"); return err }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(t, dir), " "); got != ".other.tar.tmp9 b.tar b.tar.txt" {
		t.Errorf("directory holds %q, want the leftover gone and the rest kept", got)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "archive" {
		t.Errorf("b.tar: %q, %v", b, err)
	}
}

// TestCreateFromLeavesLiveTemp: the temporary file of a CreateFrom still
// writing is not a leftover: a second CreateFrom of the same path, meanwhile,
// leaves it alone. The first then finds the path taken (fs.ErrExist), not
// its own file gone, and leaves nothing behind.
func TestCreateFromLeavesLiveTemp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	release, first := make(chan struct{}), make(chan error, 1)
	go func() {
		first <- atomicfile.CreateFrom(out, 0o600, func(w io.Writer) error {
			if _, err := io.WriteString(w, "first"); err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	for deadline := time.Now().Add(30 * time.Second); len(names(t, dir)) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // a bound on the wait, not a timing
			t.Fatal("the first CreateFrom made no temporary file in 30 s")
		}
	}
	if err := atomicfile.CreateFrom(out, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "second"); return err }); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-first; !errors.Is(err, fs.ErrExist) {
		t.Errorf("first CreateFrom: %v, want the path taken (its temporary file kept)", err)
	}
	if got := strings.Join(names(t, dir), " "); got != "b.tar" {
		t.Errorf("directory holds %q, want b.tar alone", got)
	}
	if b, _ := os.ReadFile(out); string(b) != "second" {
		t.Errorf("b.tar holds %q", b)
	}
}

// TestConcurrentWriters: writers of one path at once each put their file in
// place; none removes another's temporary file as a dead writer's.
// Regression: between a writer's creating its temporary file and locking
// it, another's cleanup found it unlocked and removed it, and the first
// writer failed ("no such file or directory").
func TestConcurrentWriters(t *testing.T) {
	const writers, rounds = 8, 50
	path := filepath.Join(t.TempDir(), "f")
	errs := make(chan error, writers*rounds)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				errs <- atomicfile.Write(path, []byte{byte(w), byte(r)}, 0o600)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, filepath.Dir(path)); len(got) != 1 || got[0] != "f" {
		t.Fatalf("directory holds %q, want f alone", got)
	}
}
