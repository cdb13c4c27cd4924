package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/secretfile"
	"github.com/iotguard/iotguard/wire"
)

// TestListenRefusesOpenDirectory: the control socket exists with the
// umask's mode until it is restricted, so it is made only in a directory
// that group and others cannot enter; another is refused, no socket made.
func TestListenRefusesOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := admin.Listen(dir, nil)
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("Listen in a 0750 directory = %v, want ErrPermissions with chmod 700", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, admin.SocketName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a socket was made: %v", err)
	}
}

// TestListenSocketMode: in a 0700 directory the socket is 0600.
func TestListenSocketMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := admin.Listen(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Lstat(filepath.Join(dir, admin.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a 0600 socket", st.Mode())
	}
}

// TestEnrollmentsAtScale lists, through the control socket, more
// enrollments than fit in the 16 MiB the client once read of an answer
// (~500 bytes each in JSON: 33,000 did): the list of a fleet at the scale
// the CH serves must come whole, or fail, never be cut.
func TestEnrollmentsAtScale(t *testing.T) {
	const n, workers = 40_000, 64
	dir := t.TempDir()
	ch := chtest.Start(t, dir, func(c *clusterhead.Config) { c.NoAdmin = false })
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err == nil {
					var key []byte
					if key, err = wire.EncodePublicKey(&k.PublicKey); err == nil {
						ctx, cancel := context.WithTimeout(context.Background(), chtest.Timeout) // each: the whole takes longer
						_, err = ch.Core.Enroll(ctx, cluster.Enrollment{ID: fmt.Sprintf("sensor-%06d", i), Key: key})
						cancel()
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	list, err := admin.Enrollments(chtest.Ctx(t), dir)
	if err != nil {
		t.Fatalf("listing %d enrollments: %v", n, err)
	}
	if len(list) != n || list[0].ID != "sensor-000000" || list[n-1].ID != fmt.Sprintf("sensor-%06d", n-1) {
		t.Fatalf("listed %d enrollments, want %d in ID order", len(list), n)
	}
}

// TestListenLongPath: a data directory whose socket path does not fit in a
// Unix socket address is refused with an error that says so and what to
// do, not the kernel's bare "bind: invalid argument".
func TestListenLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 110))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := admin.Listen(dir, nil)
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "use a shorter data directory path") {
		t.Fatalf("Listen with a %d-byte socket path: %v, want the length limit named", len(dir)+len("/admin.sock"), err)
	}
}
