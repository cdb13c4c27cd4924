package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/clitest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/membership"
)

// member is a device whose join the server acknowledged.
type member struct {
	st     *device.State
	height uint64
	hash   []byte
}

// TestBackupUnderJoinLoad backs up a running 'iotguard serve' through its
// control socket while devices join it, restores the backup into a new
// directory, and checks that 'ledger verify' passes there, that every join
// acknowledged before the backup began is in the restored ledger with the
// block it was acknowledged with, and that a server started on the restored
// directory serves those members (their member keys work).
func TestBackupUnderJoinLoad(t *testing.T) {
	srv, addr, data := serveNew(t)

	var mu sync.Mutex
	var acked []member
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				m, err := joinOne(addr, fmt.Sprintf("backup-w%d-%d", w, k))
				if err != nil {
					t.Errorf("join under load: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, m)
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for deadline := time.Now().Add(60 * time.Second); count() < 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d joins acknowledged in 60 s", count())
		}
	}

	mu.Lock()
	before := append([]member{}, acked...) // acknowledged before the backup began
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "backup.tar")
	start := time.Now()
	out := mustRun(t, 0, "ledger", "backup", "--data", data, "--out", backup)
	took := time.Since(start)
	after := count()
	if !strings.Contains(out, "(online, through the running server)") {
		t.Fatalf("backup was not taken online: %q", out)
	}
	// Joins go on after the backup, on the same server.
	for deadline := time.Now().Add(30 * time.Second); count() < after+20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("joins stopped after the backup: %d then %d", after, count())
		}
	}
	close(stop)
	wg.Wait()
	srv.stop(t)
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup has mode %v, want 0600", fi.Mode().Perm())
	}
	t.Logf("backup under load of 4 joiners: %d joins before it, %d B in %v CLI wall time (%s)", len(before), fi.Size(), took, strings.TrimSpace(out))

	restored := filepath.Join(t.TempDir(), "restored")
	out = mustRun(t, 0, "ledger", "restore", "--in", backup, "--data", restored)
	if !regexp.MustCompile(`^restored .* height \d+, head [0-9a-f]{16}; ledger verified\n$`).MatchString(out) {
		t.Fatalf("restore printed %q", out)
	}
	out = mustRun(t, 0, "ledger", "verify", "--data", restored)
	if !strings.HasPrefix(out, "ledger intact: ") {
		t.Fatalf("ledger verify of the restored directory: %q", out)
	}
	l, err := clusterhead.OpenLedger(restored)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range before {
		d, err := l.Lookup(m.st.ID)
		if err != nil {
			t.Fatalf("member %s acknowledged before the backup: %v", m.st.ID, err)
		}
		if d.Status != membership.Member || d.Joined.Height != m.height || string(d.Joined.Hash[:]) != string(m.hash) {
			t.Fatalf("member %s: restored record %v at %d, acknowledged at %d", m.st.ID, d.Status, d.Joined.Height, m.height)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A server on the restored directory serves the members of before.
	addr2 := freeAddr(t)
	srv2 := startServe(t, addr2, restored)
	if err := clitest.WaitCoAP(addr2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	asker, err := device.Dial(addr2, before[0].st)
	if err != nil {
		t.Fatal(err)
	}
	defer asker.Close()
	for _, m := range []member{before[1], before[len(before)-1]} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := asker.Verify(ctx, m.st.ID)
		cancel()
		if err != nil || v.Height != m.height {
			t.Fatalf("verify %s on the restored server: %v %+v", m.st.ID, err, v)
		}
	}
	srv2.stop(t)
}

// serveNew starts 'iotguard serve' on a free port and a new data directory
// and waits until it answers.
func serveNew(t *testing.T) (srv *server, addr, data string) {
	t.Helper()
	addr = freeAddr(t)
	data = filepath.Join(t.TempDir(), "data")
	srv = startServe(t, addr, data)
	if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return srv, addr, data
}

// joinOne joins a fresh in-memory device at the CH's position.
func joinOne(addr, id string) (member, error) {
	st, err := device.NewState(id)
	if err != nil {
		return member{}, err
	}
	d, err := device.Dial(addr, st)
	if err != nil {
		return member{}, err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := d.Join(ctx, 48_856_600, 2_352_200)
	if err != nil {
		return member{}, fmt.Errorf("join %s: %w", id, err)
	}
	return member{st: st, height: resp.Height, hash: resp.BlockHash}, nil
}

// TestBackupToFullDisk backs up onto a 64 KiB tmpfs that cannot hold the
// archive: the error says the disk is full and no file is left behind, not
// even a temporary one. It needs root to mount the tmpfs.
func TestBackupToFullDisk(t *testing.T) {
	full := t.TempDir()
	if err := syscall.Mount("tmpfs", full, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(full, 0); err != nil {
			t.Error(err)
		}
	})
	srv, addr, data := serveNew(t)
	// Enough joins that the ledger file outgrows 64 KiB.
	for i := range 60 {
		if _, err := joinOne(addr, fmt.Sprintf("full-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []string{"online", "offline"} {
		if mode == "offline" {
			srv.stop(t)
		}
		out := filepath.Join(full, mode+".tar")
		_, stderr := runCLI(t, 1, "ledger", "backup", "--data", data, "--out", out)
		if !strings.Contains(stderr, "no space left on device") {
			t.Errorf("%s backup to a full disk: stderr %q, want it to say so", mode, stderr)
		}
		entries, err := os.ReadDir(full)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("%s backup to a full disk left %v behind", mode, entries)
		}
	}
	// The server's own files are untouched: the ledger still verifies.
	mustRun(t, 0, "ledger", "verify", "--data", data)
}

// TestRestoreKilled kills 'ledger restore' (SIGKILL) while it copies the
// ledger, after it has read the CH key from the archive. The directory must
// not hold the key without the ledger: a server would start there with a
// new, empty ledger signed by the restored key (a second chain under the
// key of the first). A second restore into the same directory then
// completes, and the ledger verifies there at the backup's height.
func TestRestoreKilled(t *testing.T) {
	srv, addr, data := serveNew(t)
	for i := range 3 {
		if _, err := joinOne(addr, fmt.Sprintf("restore-kill-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.stop(t)
	backup := filepath.Join(t.TempDir(), "backup.tar")
	out := mustRun(t, 0, "ledger", "backup", "--data", data, "--out", backup)
	height := regexp.MustCompile(`height \d+`).FindString(out)

	// The archive up to the middle of ledger.db's content: the restore has
	// the key and waits for the rest of the ledger.
	archive, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	var prefix bytes.Buffer
	tw := tar.NewWriter(&prefix)
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("backup has no %s: %v", clusterhead.LedgerFile, err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Name == clusterhead.LedgerFile {
			body = body[:len(body)/2]
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
		if h.Name == clusterhead.LedgerFile {
			break
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	restored := filepath.Join(t.TempDir(), "restored")
	cmd := exec.Command("iotguard", "ledger", "restore", "--in", "/dev/stdin", "--data", restored)
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	go pw.Write(prefix.Bytes()) //nolint:errcheck // the pipe closes at the kill
	// Wait until the restore has written the key, wherever it puts it.
	keyWritten := func() bool {
		found := false
		_ = filepath.WalkDir(restored, func(_ string, d fs.DirEntry, _ error) error {
			found = found || d != nil && d.Name() == keysvc.KeyFile
			return nil
		})
		return found
	}
	for deadline := time.Now().Add(30 * time.Second); !keyWritten(); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("restore ended before the kill: %v\n%s", err, &stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore wrote no %s in 30 s\n%s", keysvc.KeyFile, &stderr)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done

	_, keyErr := os.Stat(filepath.Join(restored, keysvc.KeyFile))
	_, ledgerErr := os.Stat(filepath.Join(restored, clusterhead.LedgerFile))
	if keyErr == nil && ledgerErr != nil {
		t.Fatalf("a killed restore left %s without %s: a server there would start a new ledger under the restored key", keysvc.KeyFile, clusterhead.LedgerFile)
	}
	out = mustRun(t, 0, "ledger", "restore", "--in", backup, "--data", restored)
	if !strings.Contains(out, height+",") {
		t.Fatalf("second restore: %q, want %s", out, height)
	}
	out = mustRun(t, 0, "ledger", "verify", "--data", restored)
	if !strings.HasPrefix(out, "ledger intact: ") {
		t.Fatalf("ledger verify after the second restore: %q", out)
	}
	entries, err := os.ReadDir(restored)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("restore left %s in the data directory", e.Name())
		}
	}
}

// stalledBackup is a data directory whose control socket is a stand-in for
// the server: it sends the start of an archive and then nothing, so that a
// backup from it is always mid-stream.
func stalledBackup(t *testing.T) (data string) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(data, admin.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	stalled := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := tar.NewWriter(w)
		_ = tw.WriteHeader(&tar.Header{Name: keysvc.KeyFile, Mode: 0o600, Size: 4096, Typeflag: tar.TypeReg})
		_, _ = tw.Write(bytes.Repeat([]byte{'k'}, 1024))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})}
	go stalled.Serve(ln) //nolint:errcheck // returns on Close
	t.Cleanup(func() { stalled.Close() })
	return data
}

// startBackup starts 'ledger backup' of data to outDir/b.tar and waits until
// its temporary file there holds streamed bytes (and, if not "", is not
// named old). It returns the command, its exit and its stderr.
func startBackup(t *testing.T, data, outDir, old string) (*exec.Cmd, <-chan error, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command("iotguard", "ledger", "backup", "--data", data, "--out", filepath.Join(outDir, "b.tar"))
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	written := func() bool { // the temporary file holds the streamed bytes
		entries, _ := os.ReadDir(outDir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.Size() > 0 && e.Name() != old {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !written(); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("backup ended before the signal: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup wrote nothing in 30 s\n%s", stderr)
		}
	}
	return cmd, done, stderr
}

// TestBackupInterrupted sends SIGINT (^C) to 'ledger backup' while the
// archive streams in: it stops with an error and leaves nothing beside
// --out, not even the temporary file that held the CH key so far.
func TestBackupInterrupted(t *testing.T) {
	outDir := t.TempDir()
	cmd, done, stderr := startBackup(t, stalledBackup(t), outDir, "")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := <-done
	t.Logf("interrupted backup: %s", bytes.TrimSpace(stderr.Bytes()))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("interrupted backup: %v, want exit 1\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "b.tar not written") {
		t.Errorf("interrupted backup said %q, want that b.tar was not written", stderr)
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("interrupted backup left %s beside --out", e.Name())
	}
}

// TestBackupKilledLeftoverRemoved: 'ledger backup' killed by SIGKILL cannot
// remove its temporary file, a copy of the CH key so far; the next backup to
// the same --out removes it as it starts. (That one is then interrupted,
// and leaves nothing.)
func TestBackupKilledLeftoverRemoved(t *testing.T) {
	data, outDir := stalledBackup(t), t.TempDir()
	cmd, done, _ := startBackup(t, data, outDir, "")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	entries, err := os.ReadDir(outDir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("after SIGKILL beside --out: %v, %v; want the one temporary file", entries, err)
	}
	leftover := entries[0].Name()
	cmd, done, _ = startBackup(t, data, outDir, leftover)
	if _, err := os.Stat(filepath.Join(outDir, leftover)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed backup's %s is still there (%v)", leftover, err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-done
	if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
		t.Errorf("left beside --out: %v", entries)
	}
}

// TestRestoreProgress: 'ledger restore' shows the progress of its verify
// (long on a large ledger) on a terminal, and writes nothing to stderr in a
// pipe.
func TestRestoreProgress(t *testing.T) {
	srv, addr, data := serveNew(t)
	if _, err := joinOne(addr, "progress-a"); err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
	backup := filepath.Join(t.TempDir(), "backup.tar")
	mustRun(t, 0, "ledger", "backup", "--data", data, "--out", backup)

	if _, stderr := runCLI(t, 0, "ledger", "restore", "--in", backup, "--data", filepath.Join(t.TempDir(), "piped")); stderr != "" {
		t.Errorf("restore wrote %q to stderr in a pipe, want nothing", stderr)
	}

	ptm, pts := openPTY(t)
	cmd := exec.Command("iotguard", "ledger", "restore", "--in", backup, "--data", filepath.Join(t.TempDir(), "terminal"))
	cmd.Stderr = pts
	var shown []byte
	read := make(chan struct{})
	go func() { shown, _ = io.ReadAll(ptm); close(read) }() // EIO once the terminal's last writer is gone
	err := cmd.Run()
	pts.Close()
	<-read
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(shown, []byte("verifying restored blocks")) {
		t.Errorf("restore showed %q on a terminal, want a progress bar", shown)
	}
}

// openPTY opens a pseudo-terminal pair: what the child writes to pts, the
// test reads from ptm.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatal(errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatal(errno)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}
