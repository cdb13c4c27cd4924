package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/internal/clitest"
)

// TestLedgerVerifyNamesTamperedBlock builds a ledger through the CLI (a real
// server, real joins), stops the server, then flips one byte inside the
// stored value of one block in bucket "blocks" — at the start, in the middle
// and at the end of the value, for every block — and checks that
// 'ledger verify' exits 1 naming exactly that block.
func TestLedgerVerifyNamesTamperedBlock(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	srv := startServe(t, addr, data)
	if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	devices := t.TempDir()
	for _, id := range []string{"sensor-a", "sensor-b", "sensor-c"} {
		key := filepath.Join(devices, id+".json")
		mustRun(t, 0, "device", "keygen", "--id", id, "--out", key)
		mustRun(t, 0, "device", "join", "--server", "coap://"+addr, "--key", key, "--position", "48.857,2.352")
	}
	srv.stop(t)

	const lastHeight = 3 // genesis, then one block per join
	out := mustRun(t, 0, "ledger", "verify", "--data", data)
	if !strings.HasPrefix(out, fmt.Sprintf("ledger intact: height %d, head ", lastHeight)) {
		t.Fatalf("ledger verify of the untouched ledger: %q", out)
	}

	// Control: an untouched copy verifies, so a failure below is the flip's.
	mustRun(t, 0, "ledger", "verify", "--data", copyDataDir(t, data))

	where := []struct {
		name string
		at   func(n int) int
	}{
		{"first byte", func(int) int { return 0 }},
		{"middle", func(n int) int { return n / 2 }},
		{"last byte", func(n int) int { return n - 1 }},
	}
	for h := uint64(0); h <= lastHeight; h++ {
		for _, w := range where {
			t.Run(fmt.Sprintf("block %d %s", h, w.name), func(t *testing.T) {
				t.Parallel()
				dir := copyDataDir(t, data)
				flipBlockByte(t, filepath.Join(dir, "ledger.db"), h, w.at)
				out := mustRun(t, 1, "ledger", "verify", "--data", dir)
				want := fmt.Sprintf("ledger BROKEN at block %d: ", h)
				if !strings.HasPrefix(out, want) {
					t.Errorf("ledger verify printed %q, want a line starting %q", out, want)
				}
				t.Logf("%s", out)
			})
		}
	}
}

// server is a background 'iotguard serve'.
type server struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, set before done is closed
}

// freeAddr returns a free UDP address on 127.0.0.1 for a server to listen on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := clitest.FreeUDPPorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

// startServe runs 'iotguard serve' (the test binary, installed in $PATH by
// testscript.Main) in the background; a test that ends early kills it. Its
// admission is open: the tests that use it (crash consistency, tamper
// detection) are about the ledger, and join devices nobody enrolled.
func startServe(t *testing.T, addr, data string) *server {
	t.Helper()
	s := &server{stderr: new(bytes.Buffer), done: make(chan struct{})}
	// --rate-limit 0 --join-rate 0: the tests' join loads come from
	// 127.0.0.1 alone, one source, as a benchmark's do.
	s.cmd = exec.Command("iotguard", "serve", "--listen", addr, "--data", data,
		"--cluster-id", "tamper-test", "--position", "48.8566,2.3522", "--radius", "1000", "--admission", "open", "--rate-limit", "0", "--join-rate", "0")
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// stop sends the server SIGTERM (the scripts use SIGINT) and waits, bounded,
// for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		if s.err != nil || !strings.Contains(s.stderr.String(), `msg="shutting down" signal=terminated`) {
			t.Fatalf("serve exited with %v after SIGTERM; stderr:\n%s", s.err, s.stderr)
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done // stderr is complete only after Wait
		t.Fatalf("serve did not stop within 15 s of SIGINT; stderr:\n%s", s.stderr)
	}
}

// kill sends the server SIGKILL, a crash at whatever it was doing, and waits
// for it to end.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
}

// mustRun runs the iotguard CLI with args, checks its exit code and returns
// its stdout.
func mustRun(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	stdout, _ := runCLI(t, wantCode, args...)
	return stdout
}

// runCLI is mustRun returning stderr too.
func runCLI(t *testing.T, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iotguard", args...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("iotguard %s: %v", strings.Join(args, " "), err)
	}
	if code != wantCode {
		t.Fatalf("iotguard %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, &outBuf, &errBuf)
	}
	return outBuf.String(), errBuf.String()
}

// copyDataDir copies the regular files of a stopped server's data directory
// (CH key, ledger) into a fresh directory.
func copyDataDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// flipBlockByte XORs one byte of the value stored for block height in bucket
// "blocks" (keys are 8-byte big-endian heights), at index at(len(value)).
func flipBlockByte(t *testing.T, path string, height uint64, at func(n int) int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("blocks"))
		if b == nil {
			return errors.New(`no bucket "blocks"`)
		}
		k := binary.BigEndian.AppendUint64(nil, height)
		v := b.Get(k)
		if v == nil {
			return fmt.Errorf("no block stored under key %x", k)
		}
		v = bytes.Clone(v) // v belongs to the transaction
		v[at(len(v))] ^= 0x01
		return b.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
