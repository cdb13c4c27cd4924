// Package clitest holds what the end-to-end tests of the iotguard binaries
// share: testscript commands for their scripts, free ports, and a wait for a
// CoAP server to answer.
package clitest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/iotguard/iotguard/keysvc"
)

// RunScripts runs the test package's testdata/script/*.txtar, where exec
// must be explicit, with the commands of Cmds and extra.
func RunScripts(t *testing.T, extra map[string]func(ts *testscript.TestScript, neg bool, args []string)) {
	cmds := Cmds()
	maps.Copy(cmds, extra)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Cmds:                cmds,
	})
}

// Cmds returns the commands the CLI's scripts may use besides testscript's
// built-ins:
//
//	freeport VAR...             set each VAR to a distinct free UDP port on 127.0.0.1
//	waitcoap HOST:PORT          wait (≤ 10 s) until a CoAP server answers there
//	waitfile FILE               wait (≤ 10 s) until FILE exists (a server's admin.sock: it
//	                            listens a moment after the CoAP server answers)
//	perm FILE MODE              FILE's permission bits must be MODE (octal)
//	jsonl [-nojoin ID...] TYPE... stdout is 'ledger list --format json' output holding every TYPE
//	                            (with --records, a session batch's records count too)
//	devseq FILE VAR [+N]        set VAR to the device file's seq, or check it is VAR's value + N
//	mayfail PROG ARGS...        exec PROG, whatever its exit status (like cmd/go's "? exec")
//	capture FILE REGEXP VAR     set VAR to REGEXP's first group in FILE (stdout, stderr or a file)
//	keythumb DIR VAR            set VAR to the hex thumbprint of the CH key in data directory DIR
func Cmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"freeport": cmdFreePort,
		"waitcoap": cmdWaitCoAP,
		"waitfile": cmdWaitFile,
		"perm":     cmdPerm,
		"jsonl":    cmdJSONL,
		"devseq":   cmdDevSeq,
		"mayfail":  cmdMayFail,
		"capture":  cmdCapture,
		"keythumb": cmdKeyThumb,
	}
}

func cmdKeyThumb(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: keythumb DIR VAR")
	}
	keys, err := keysvc.Load(ts.MkAbs(args[0]))
	ts.Check(err)
	th := keys.Thumbprint()
	ts.Setenv(args[1], hex.EncodeToString(th[:]))
}

// FreeUDPPorts returns n distinct UDP ports that were free on 127.0.0.1 a
// moment ago. All n sockets are held until every port is picked, so two
// calls in one batch never return the same port.
func FreeUDPPorts(n int) ([]int, error) {
	var ports []int
	var conns []net.PacketConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	return ports, nil
}

func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: freeport VAR...")
	}
	ports, err := FreeUDPPorts(len(args))
	ts.Check(err)
	for i, name := range args {
		ts.Setenv(name, strconv.Itoa(ports[i]))
	}
}

// WaitCoAP polls addr with GET /.well-known/core until any CoAP answer comes
// back (a device listener answers 4.04, which is fine: it is up) or the
// deadline passes.
func WaitCoAP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		last = pingCoAP(addr, 300*time.Millisecond)
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no CoAP answer from %s within %v: %w", addr, within, last)
}

func pingCoAP(addr string, timeout time.Duration) error {
	// Quiet: until the server is up, every read fails with ICMP "connection
	// refused", which go-coap would otherwise print.
	conn, err := udp.Dial(addr, options.WithErrors(func(error) {}))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := conn.Get(ctx, "/.well-known/core")
	if err != nil {
		return err
	}
	conn.ReleaseMessage(resp)
	return nil
}

func cmdWaitCoAP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitcoap HOST:PORT")
	}
	ts.Check(WaitCoAP(args[0], 10*time.Second))
}

func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err = os.Stat(path); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear within 10s: %v", args[0], err)
}

func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s has mode %#o, want %#o", args[0], got, want)
	}
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// knownEvents are the event types 'ledger list' may show (docs/PROTOCOL.md §7).
var knownEvents = map[string]bool{"join": true, "leave": true, "revoke": true, "session": true, "verify-warning": true, "rotate": true,
	"enroll": true, "unenroll": true, "session-batch": true, "grants-pruned": true}

// cmdJSONL checks that stdout is 'ledger list --format json' output: one JSON
// object per line, heights 0, 1, 2, … each linked to the previous hash, only
// known event types, and every TYPE in args present. -nojoin ID asserts that
// no join event for ID is listed.
func cmdJSONL(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! jsonl")
	}
	var noJoin []string
	for len(args) >= 2 && args[0] == "-nojoin" {
		noJoin, args = append(noJoin, args[1]), args[2:]
	}
	out := ts.ReadFile("stdout")
	if !strings.HasSuffix(out, "\n") {
		ts.Fatalf("ledger list output does not end in a newline")
	}
	seen := map[string]int{}
	prev := strings.Repeat("0", 64)
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var b struct {
			Height *uint64       `json:"height"`
			Hash   string        `json:"hash"`
			Prev   string        `json:"prev"`
			Time   string        `json:"time"`
			Events []listedEvent `json:"events"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			ts.Fatalf("line %d is not a ledger block in JSON: %v: %s", i+1, err, line)
		}
		if dec.More() {
			ts.Fatalf("line %d holds more than one JSON value: %s", i+1, line)
		}
		if b.Height == nil || *b.Height != uint64(i) {
			ts.Fatalf("line %d: height %v, want %d", i+1, b.Height, i)
		}
		if !hexHash.MatchString(b.Hash) || b.Prev != prev {
			ts.Fatalf("line %d: hash %q prev %q, want prev %q", i+1, b.Hash, b.Prev, prev)
		}
		if _, err := time.Parse(time.RFC3339Nano, b.Time); err != nil {
			ts.Fatalf("line %d: time: %v", i+1, err)
		}
		if b.Events == nil || (i == 0) != (len(b.Events) == 0) {
			ts.Fatalf("line %d: %d events (genesis has none, every other block some)", i+1, len(b.Events))
		}
		var check func(e listedEvent)
		check = func(e listedEvent) {
			if !knownEvents[e.Type] || e.Device == "" {
				ts.Fatalf("line %d: bad event type %q device %q", i+1, e.Type, e.Device)
			}
			if (e.Type == "enroll") != hexHash.MatchString(e.Key) {
				ts.Fatalf("line %d: %s event with key thumbprint %q (enrolls, and only they, name one)", i+1, e.Type, e.Key)
			}
			if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
				ts.Fatalf("line %d: event time: %v", i+1, err)
			}
			for _, id := range noJoin {
				if e.Type == "join" && e.Device == id {
					ts.Fatalf("line %d: join of %s is on the ledger", i+1, id)
				}
			}
			if len(e.Records) > 0 && (e.Type != "session-batch" || uint64(len(e.Records)) != e.Count) {
				ts.Fatalf("line %d: %s event with %d records (a session batch lists its count of them)", i+1, e.Type, len(e.Records))
			}
			seen[e.Type]++
			for _, r := range e.Records {
				if r.Type != "session" && r.Type != "verify-warning" {
					ts.Fatalf("line %d: a %s record in session batch %d", i+1, r.Type, e.Batch)
				}
				check(r)
			}
		}
		for _, e := range b.Events {
			check(e)
		}
		prev = b.Hash
	}
	for _, typ := range args {
		if seen[typ] == 0 {
			ts.Fatalf("no %s event listed (have %v)", typ, seen)
		}
	}
}

// listedEvent is an event as 'ledger list --format json' prints it; a
// session batch listed with --records holds its audit records.
type listedEvent struct {
	Type      string        `json:"type"`
	Device    string        `json:"device"`
	Peer      string        `json:"peer"`
	Time      string        `json:"time"`
	Expires   int64         `json:"expires"`
	SessionID string        `json:"session_id"`
	Reason    string        `json:"reason"`
	Key       string        `json:"key_thumbprint"`
	Position  [2]float64    `json:"position"`
	Tolerance uint64        `json:"tolerance_m"`
	Replace   bool          `json:"replace"`
	Batch     uint64        `json:"batch"`
	Count     uint64        `json:"count"`
	Root      string        `json:"root"`
	Records   []listedEvent `json:"records"`
	Pruned    bool          `json:"pruned"`
}

// cmdDevSeq reads the protected-request sequence number from a device file.
// With +N it checks the number grew by exactly N since VAR was set: one per
// protected request, two when the CH answered the first one with an Echo
// challenge (a restarted CH, docs/PROTOCOL.md §4.2).
func cmdDevSeq(ts *testscript.TestScript, neg bool, args []string) {
	if neg || (len(args) != 2 && len(args) != 3) {
		ts.Fatalf("usage: devseq FILE VAR [+N]")
	}
	var st struct {
		Seq *uint64 `json:"seq"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &st))
	if st.Seq == nil {
		ts.Fatalf("%s has no seq", args[0])
	}
	if len(args) == 2 {
		ts.Setenv(args[1], strconv.FormatUint(*st.Seq, 10))
		return
	}
	was, err := strconv.ParseUint(ts.Getenv(args[1]), 10, 64)
	ts.Check(err)
	n, err := strconv.ParseUint(strings.TrimPrefix(args[2], "+"), 10, 64)
	ts.Check(err)
	if *st.Seq != was+n {
		ts.Fatalf("%s: seq %d, want %d + %d", args[0], *st.Seq, was, n)
	}
}

// cmdMayFail runs a program for its effects and output, accepting any exit
// status: for steps where either outcome is correct.
func cmdMayFail(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: mayfail PROG ARGS...")
	}
	if err := ts.Exec(args[0], args[1:]...); err != nil {
		ts.Logf("[%v]", err)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: capture FILE REGEXP VAR")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[0]))
	if len(m) < 2 {
		ts.Fatalf("no match for %q with a group in %s", args[1], args[0])
	}
	ts.Setenv(args[2], m[1])
}
