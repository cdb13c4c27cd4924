package main

import (
	"bytes"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/clitest"
	"github.com/iotguard/iotguard/internal/testutil"
)

// unitDir holds the systemd units: the server and the daily retention of
// its audit records (a timer and the oneshot service it starts).
const unitDir = "../../contrib/systemd"

// services are the units that run iotguard, with the command each runs.
var services = map[string]string{
	"iotguard.service":              "serve",
	"iotguard-prune-grants.service": "ledger prune-grants --data /var/lib/iotguard --older-than 90d",
}

// systemdAnalyze returns the path of systemd-analyze ('make deps' installs
// the Debian package systemd).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	return testutil.Tool(t, "systemd-analyze", "systemd")
}

// installedUnits writes every unit into a temporary directory, with
// ExecStart pointing at this test's iotguard (systemd-analyze verify checks
// that the program exists), and returns the directory.
func installedUnits(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("iotguard")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range append(slices.Sorted(maps.Keys(services)), "iotguard-prune-grants.timer") {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if cmd, ok := services[name]; ok && !bytes.Contains(b, []byte("\nExecStart=/usr/local/bin/iotguard "+cmd+"\n")) {
			t.Fatalf("%s: no ExecStart=/usr/local/bin/iotguard %s", name, cmd)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/iotguard"), []byte(bin))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSystemdUnitsVerify runs 'systemd-analyze verify' on the units, which
// fails on unknown directives, bad values, a missing program and a timer
// without its service.
func TestSystemdUnitsVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := installedUnits(t)
	units, err := os.ReadDir(dir)
	if err != nil || len(units) != len(services)+1 {
		t.Fatalf("installed units: %v, %v", units, err)
	}
	for _, u := range units {
		out, err := exec.Command(sa, "verify", filepath.Join(dir, u.Name())).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u.Name(), err, out)
		}
	}
}

// TestSystemdUnitsSecurity requires 'systemd-analyze security' to rate each
// service's sandboxing 2.0 or lower ("OK").
func TestSystemdUnitsSecurity(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := installedUnits(t)
	for name := range services {
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", name, err, out)
		}
		m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(name) + `: ([0-9.]+) (\w+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no overall exposure level in:\n%s", out)
		}
		score, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("systemd-analyze security %s: %.1f %s", name, score, m[2])
		if score > 2.0 {
			t.Errorf("%s: exposure %.1f %s, want 2.0 or lower:\n%s", name, score, m[2], out)
		}
	}
}

// TestPruneUnitCommand runs the retention unit's command, its data
// directory replaced, beside a running server and then on its stopped data
// directory: the command as shipped parses, and prunes (nothing is 90 days
// old) through the control socket and then on the files.
func TestPruneUnitCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cmd := strings.Fields(strings.Replace(services["iotguard-prune-grants.service"], "/var/lib/iotguard", data, 1))
	addr := freeAddr(t)
	srv := startServe(t, addr, data)
	if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"online, through the running server", "offline, server stopped"} {
		out := mustRun(t, 0, cmd...)
		if !regexp.MustCompile(`^pruned 0 grant records of 0 batches written before \S+ \(` + mode + `\)`).MatchString(out) {
			t.Fatalf("the unit's command printed %q, want it %s", out, mode)
		}
		if mode != "offline, server stopped" {
			srv.stop(t)
		}
	}
}

// TestSampleConfig checks that the sample /etc/iotguard/iotguard.toml is
// accepted as it ships, every key read from the file.
func TestSampleConfig(t *testing.T) {
	out := mustRun(t, 0, "config", "print", "--config", "../../contrib/systemd/iotguard.toml")
	for _, key := range []string{"listen", "metrics", "cluster-id", "position", "radius", "member-ttl", "session-ttl", "rate-limit", "log-format", "log-level"} {
		if !regexp.MustCompile(`(?m)^` + key + ` +"[^"]*" +file `).MatchString(out) {
			t.Errorf("key %s not read from the sample file:\n%s", key, out)
		}
	}
}

// TestSystemdNotify runs 'iotguard serve' as systemd would run a Type=notify
// unit with WatchdogSec: NOTIFY_SOCKET names a datagram socket of the test's,
// WATCHDOG_USEC the interval. The server must send READY=1 once it answers
// CoAP, WATCHDOG=1 pings while it runs, and STOPPING=1 on SIGTERM before it
// exits cleanly.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := freeAddr(t)
	cmd := exec.Command("iotguard", "serve", "--listen", addr, "--data", filepath.Join(t.TempDir(), "data"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	// next returns the next notification; the deadline only keeps a broken
	// server from hanging the test.
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v; stderr:\n%s", err, &stderr)
		}
		return string(buf[:n])
	}
	ready := next()
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=serving cluster cluster-1 on coap://"+addr) {
		t.Fatalf("first notification %q, want READY=1 with a status", ready)
	}
	// READY comes after the CoAP socket is serving.
	if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %d after READY: %q, want WATCHDOG=1", i+1, got)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		got := next()
		if got == "WATCHDOG=1" { // one may have been in flight
			continue
		}
		if got != "STOPPING=1" {
			t.Fatalf("after SIGTERM: %q, want STOPPING=1", got)
		}
		break
	}
	if err := <-done; err != nil {
		t.Fatalf("serve exited with %v; stderr:\n%s", err, &stderr)
	}
}
