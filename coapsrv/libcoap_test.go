package coapsrv_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// These tests drive the cluster head with libcoap's command-line client, an
// independent CoAP implementation: what an operator with coap-client sees.
// libcoap prints a 4.xx/5.xx answer as "<code> <diagnostic>" on stderr and
// exits 0 all the same, so the tests read its output, not its exit status.

const libcoapClient = "coap-client-notls" // Debian package libcoap3-bin

// libcoap returns the path of libcoap's client named name (default
// coap-client-notls), skipped without it, but under CI.
func libcoap(t *testing.T, name ...string) string {
	t.Helper()
	bin := libcoapClient
	if len(name) > 0 {
		bin = name[0]
	}
	return testutil.Tool(t, bin, "libcoap3-bin")
}

type coapOut struct{ stdout, stderr string }

// coapClient runs libcoap's client with args. -B 5 bounds libcoap's own wait;
// the context bounds the whole process.
func coapClient(t *testing.T, bin string, args ...string) coapOut {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-B", "5"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: killed after 20 s; stderr:\n%s", bin, strings.Join(args, " "), &stderr)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return coapOut{stdout.String(), stderr.String()}
}

// startCH starts a test cluster head and stops it when the test ends.
func startCH(t *testing.T) (*clusterhead.CH, string) {
	t.Helper()
	ch := chtest.Start(t, "")
	return ch, "coap://" + ch.Addr()
}

func TestLibcoapWellKnownCore(t *testing.T) {
	bin := libcoap(t)
	_, base := startCH(t)
	out := coapClient(t, bin, "-m", "get", base+"/.well-known/core")
	for _, link := range []string{"</join>", "</verify>", "</session>", "</leave>", "</cluster>", "</ledger/head>"} {
		if !strings.Contains(out.stdout, link) {
			t.Errorf("/.well-known/core lacks %s: %q", link, out.stdout)
		}
	}
	for _, attrs := range []string{`</join>;rt="iotguard.join";ct=18`, `</verify>;rt="iotguard.verify";ct=16`} {
		if !strings.Contains(out.stdout, attrs) {
			t.Errorf("/.well-known/core lacks %s: %q", attrs, out.stdout)
		}
	}
	if out.stderr != "" {
		t.Errorf("stderr: %q", out.stderr)
	}
}

func TestLibcoapClusterText(t *testing.T) {
	bin := libcoap(t)
	ch, base := startCH(t)
	out := coapClient(t, bin, "-m", "get", "-A", "0", base+"/cluster")
	thumb := ch.Keys.Thumbprint()
	for _, line := range []string{
		"cluster " + chtest.Cluster,
		"position 48.856600,2.352200",
		"radius 1000 m",
		"ch-key-thumbprint " + hex.EncodeToString(thumb[:]),
		"admission enrolled", // the default: which devices may join
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(out.stdout) {
			t.Errorf("GET -A 0 /cluster lacks the line %q: %q (stderr %q)", line, out.stdout, out.stderr)
		}
	}
}

// TestLibcoapClusterSigned reads the signed /cluster with libcoap and checks
// it with the wire package: the bytes libcoap received are a COSE_Sign1 by
// the CH key over the cluster facts.
func TestLibcoapClusterSigned(t *testing.T) {
	bin := libcoap(t)
	ch, base := startCH(t)
	file := filepath.Join(t.TempDir(), "cluster.cose")
	coapClient(t, bin, "-m", "get", "-o", file, base+"/cluster")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseSign1(b)
	if err != nil {
		t.Fatalf("GET /cluster is not a COSE_Sign1: %v (%x)", err, b)
	}
	if err := s.Verify(ch.Keys.PublicKey(), wire.AADCluster); err != nil {
		t.Fatalf("GET /cluster: %v", err)
	}
	var info wire.ClusterInfo
	if err := wire.Decode(s.Payload, &info); err != nil {
		t.Fatal(err)
	}
	thumb := ch.Keys.Thumbprint()
	if info.Cluster != chtest.Cluster || !bytes.Equal(info.Thumbprint, thumb[:]) || !bytes.Equal(s.KID, thumb[:]) ||
		info.Lat != chtest.Here.Lat || info.Lon != chtest.Here.Lon || info.Radius != 1000 {
		t.Errorf("GET /cluster: %+v kid %x", info, s.KID)
	}
}

func TestLibcoapLedgerHead(t *testing.T) {
	bin := libcoap(t)
	ch, base := startCH(t)
	chtest.Joined(t, ch, "sensor-a")
	ref, _, err := ch.Ledger.Head()
	if err != nil {
		t.Fatal(err)
	}
	out := coapClient(t, bin, "-m", "get", "-A", "0", base+"/ledger/head")
	for _, line := range []string{fmt.Sprintf("height %d", ref.Height), "hash " + hex.EncodeToString(ref.Hash[:])} {
		if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(out.stdout) {
			t.Errorf("GET -A 0 /ledger/head lacks the line %q: %q (stderr %q)", line, out.stdout, out.stderr)
		}
	}
	if !regexp.MustCompile(`(?m)^time_ms [0-9]{13}$`).MatchString(out.stdout) {
		t.Errorf("GET -A 0 /ledger/head lacks time_ms: %q", out.stdout)
	}

	file := filepath.Join(t.TempDir(), "head.cose")
	coapClient(t, bin, "-m", "get", "-o", file, base+"/ledger/head")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseSign1(b)
	if err != nil {
		t.Fatalf("GET /ledger/head is not a COSE_Sign1: %v (%x)", err, b)
	}
	if err := s.Verify(ch.Keys.PublicKey(), wire.AADHead); err != nil {
		t.Fatalf("GET /ledger/head: %v", err)
	}
	var head wire.LedgerHead
	if err := wire.Decode(s.Payload, &head); err != nil {
		t.Fatal(err)
	}
	if head.Height != ref.Height || !bytes.Equal(head.Hash, ref.Hash[:]) {
		t.Errorf("GET /ledger/head: height %d hash %x, want %d %x", head.Height, head.Hash, ref.Height, ref.Hash)
	}
}

// TestLibcoapFollowsEchoChallenge: the public resources answer a source
// whose address no Echo verified with 4.01 and an Echo option (RFC 9175
// §2.4); libcoap's client repeats the request carrying that Echo by itself
// and gets the answer, in one command, CON or NON (a NON request is answered
// NON, challenge and answer). Read from libcoap's own log (-v 7).
func TestLibcoapFollowsEchoChallenge(t *testing.T) {
	bin := libcoap(t)
	_, base := startCH(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // in stdout
	}{
		{"cluster", []string{"-A", "0", base + "/cluster"}, "radius 1000 m"},
		{"ledger head", []string{"-A", "0", base + "/ledger/head"}, "height 0"},
		{"well-known core", []string{base + "/.well-known/core"}, "</cluster>"},
	} {
		for _, typ := range []string{"CON", "NON"} {
			t.Run(tc.name+" "+typ, func(t *testing.T) {
				args := append([]string{"-v", "7", "-m", "get"}, tc.args...)
				if typ == "NON" {
					args = append([]string{"-N"}, args...)
				}
				out := coapClient(t, bin, args...)
				log := out.stdout + out.stderr
				reply := "ACK"
				if typ == "NON" {
					reply = "NON"
				}
				for _, want := range []*regexp.Regexp{
					regexp.MustCompile(`(?m)^v:1 t:` + reply + ` c:4\.01 .*Echo:0x[0-9a-f]{40} .*'echo required'$`),
					regexp.MustCompile(`(?m)^v:1 t:` + typ + ` c:GET .*Echo:0x[0-9a-f]{40} \]$`),
					regexp.MustCompile(`(?m)^v:1 t:` + reply + ` c:2\.05 `),
				} {
					if !want.MatchString(log) {
						t.Errorf("libcoap's log lacks %s:\n%s", want, log)
					}
				}
				if !strings.Contains(out.stdout, tc.want) {
					t.Errorf("stdout %q lacks %q", out.stdout, tc.want)
				}
			})
		}
	}
}

// TestLibcoapPaddedCluster: coap-client's GET /cluster padded to 128 bytes
// with the Padding option, as docs/PROTOCOL.md §2 writes it (-O 65020,…,
// expanded by bash), gets the signed answer, with an Echo, in one round
// trip: no 4.01 in libcoap's log; the same GET unpadded is challenged first.
// The example's URL has the default port, this CH another: libcoap adds a
// Uri-Port option here (3 bytes for a port ≥ 256) that the example's
// datagram lacks, so that datagram must be 128 bytes without it.
func TestLibcoapPaddedCluster(t *testing.T) {
	bin := libcoap(t)
	_, base := startCH(t)
	padding := documentedPadding(t)
	if !strings.HasPrefix(padding, fmt.Sprintf("%d,0x", coapedge.OptionPadding)) {
		t.Fatalf("docs/PROTOCOL.md §2 pads with %q, not the Padding option", padding)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		challenged bool
	}{
		{"padded", []string{"-O", padding}, false},
		{"unpadded", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := coapClient(t, bin, append([]string{"-v", "7", "-m", "get"}, append(tc.args, base+"/cluster")...)...)
			log := out.stdout + out.stderr
			if challenged := strings.Contains(log, "c:4.01"); challenged != tc.challenged {
				t.Errorf("GET /cluster %s: challenged %v, want %v:\n%s", tc.name, challenged, tc.challenged, log)
			}
			if !tc.challenged {
				m := regexp.MustCompile(`sent (\d+) bytes`).FindStringSubmatch(log)
				if m == nil {
					t.Fatalf("no datagram size in libcoap's log:\n%s", log)
				}
				if n, _ := strconv.Atoi(m[1]); n-3 < 128 {
					t.Errorf("the example of docs/PROTOCOL.md §2 sends %d bytes to the default port, want at least 128 (-O %s)", n-3, padding)
				}
			}
			if !regexp.MustCompile(`(?m)^v:1 t:ACK c:2\.05 .*Echo:0x[0-9a-f]{40} \]`).MatchString(log) {
				t.Errorf("GET /cluster %s: no 2.05 with an Echo in libcoap's log:\n%s", tc.name, log)
			}
		})
	}
}

// documentedPadding returns the -O argument of the padded GET /cluster in
// docs/PROTOCOL.md §2, expanded by bash as an operator's shell expands it.
func documentedPadding(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`coap-client-notls -m get -O ([^`]+?) coap://CH/cluster`").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/PROTOCOL.md §2 has no padded 'coap-client-notls -m get -O … coap://CH/cluster' example")
	}
	bash := testutil.Tool(t, "bash", "bash")
	out, err := exec.Command(bash, "-c", "echo "+string(m[1])).Output()
	if err != nil {
		t.Fatalf("bash -c 'echo %s': %v", m[1], err)
	}
	return strings.TrimSpace(string(out))
}

// TestLibcoapRejections sends what a CH must refuse and checks the code and
// diagnostic libcoap prints, and that nothing reached the ledger.
func TestLibcoapRejections(t *testing.T) {
	bin := libcoap(t)
	ch, base := startCH(t)
	dir := t.TempDir()
	payload := func(n int) string {
		f := filepath.Join(dir, fmt.Sprintf("payload-%d", n))
		if err := os.WriteFile(f, bytes.Repeat([]byte{0xa5}, n), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	before := chtest.Height(t, ch)
	for _, tc := range []struct {
		name string
		args []string
		want string // start of the line libcoap prints on stderr
	}{
		{"garbage join", []string{"-m", "post", "-t", "18", "-e", "garbage", base + "/join"}, "4.00 malformed"},
		{"garbage verify", []string{"-m", "post", "-t", "16", "-e", "garbage", base + "/verify"}, "4.00 malformed"},
		{"garbage session", []string{"-m", "post", "-t", "16", "-e", "garbage", base + "/session"}, "4.00 malformed"},
		{"garbage leave", []string{"-m", "post", "-t", "16", "-e", "garbage", base + "/leave"}, "4.00 malformed"},
		{"empty join", []string{"-m", "post", "-t", "18", base + "/join"}, "4.00 malformed"},
		{"1024 bytes of garbage join", []string{"-m", "post", "-t", "18", "-f", payload(1024), base + "/join"}, "4.00 malformed"},
		{"text join", []string{"-m", "post", "-t", "0", "-e", "garbage", base + "/join"}, "4.15 unsupported content-format"},
		{"join without content-format", []string{"-m", "post", "-e", "garbage", base + "/join"}, "4.15 unsupported content-format"},
		{"sign1 to verify", []string{"-m", "post", "-t", "18", "-e", "garbage", base + "/verify"}, "4.15 unsupported content-format"},
		{"GET join", []string{"-m", "get", base + "/join"}, "4.05 method not allowed"},
		{"GET verify", []string{"-m", "get", base + "/verify"}, "4.05 method not allowed"},
		{"PUT leave", []string{"-m", "put", "-t", "16", "-e", "x", base + "/leave"}, "4.05 method not allowed"},
		{"POST cluster", []string{"-m", "post", "-t", "0", "-e", "x", base + "/cluster"}, "4.05 method not allowed"},
		{"DELETE ledger head", []string{"-m", "delete", base + "/ledger/head"}, "4.05 method not allowed"},
		// libcoap sends anything over 1024 bytes block-wise (Block1, SZX 6)
		// and cannot be told not to; the CH must still answer 4.13.
		{"1025 bytes join", []string{"-m", "post", "-t", "18", "-f", payload(1025), base + "/join"}, "4.13 too large"},
		{"2000 bytes join", []string{"-m", "post", "-t", "18", "-f", payload(2000), base + "/join"}, "4.13 too large"},
		{"2000 bytes verify", []string{"-m", "post", "-t", "16", "-f", payload(2000), base + "/verify"}, "4.13 too large"},
		{"nonexistent", []string{"-m", "get", base + "/nonexistent"}, "4.04"},
		{"POST nonexistent", []string{"-m", "post", "-t", "18", "-e", "x", base + "/join/x"}, "4.04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := coapClient(t, bin, tc.args...)
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tc.want)).MatchString(out.stderr) {
				t.Errorf("stderr %q, want a line starting %q (stdout %q)", out.stderr, tc.want, out.stdout)
			}
			if out.stdout != "" {
				t.Errorf("stdout %q, want nothing", out.stdout)
			}
		})
	}
	if after := chtest.Height(t, ch); after != before {
		t.Errorf("ledger height %d after the rejected requests, was %d", after, before)
	}
	out := coapClient(t, bin, "-m", "get", "-A", "0", base+"/ledger/head")
	if !strings.HasPrefix(out.stdout, fmt.Sprintf("height %d\n", before)) {
		t.Errorf("GET -A 0 /ledger/head after the rejections: %q", out.stdout)
	}
}

// TestLibcoapOversizedBlockwiseRejectedAtFirstBlock: a block-wise POST whose
// Size1 announces more than 1024 bytes must be refused with 4.13 (Size1 =
// 1024) at its first block (RFC 7959 §2.9.3, docs/PROTOCOL.md §2), not
// acknowledged block after block and buffered until the size check runs.
//
// Regression: go-coap's block-wise layer (default maxReceiveBodySize 0 =
// unlimited) answered 2.31 Continue to every block and reassembled the whole
// body in memory before coapsrv's size middleware saw it.
func TestLibcoapOversizedBlockwiseRejectedAtFirstBlock(t *testing.T) {
	bin := libcoap(t)
	ch, base := startCH(t)
	f := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(f, bytes.Repeat([]byte{0xa5}, 32*1024), 0o600); err != nil {
		t.Fatal(err)
	}
	// -v 7 makes libcoap log every PDU it sends and receives, e.g.
	// "v:1 t:ACK c:2.31 i:5950 {01} [ Block1:0/M/1024 ]".
	out := coapClient(t, bin, "-v", "7", "-m", "post", "-t", "18", "-f", f, base+"/join")
	final := regexp.MustCompile(`(?m)^v:1 t:ACK c:4\.13 .*Size1:1024`)
	if !final.MatchString(out.stderr + out.stdout) {
		t.Fatalf("no 4.13 with Size1:1024 in libcoap's log:\n%s", out.stderr+out.stdout)
	}
	if n := strings.Count(out.stderr+out.stdout, " c:2.31 "); n != 0 {
		t.Errorf("the CH acknowledged %d blocks (2.31 Continue) of a %d-byte body announced in Size1 before refusing it", n, 32*1024)
	}
	if h := chtest.Height(t, ch); h != 0 {
		t.Errorf("ledger height %d, want 0", h)
	}
}

// TestOversizedSingleDatagramAnswered413: a well-formed CoAP POST whose
// payload exceeds 1024 bytes in one datagram must get 4.13 "too large"
// (docs/PROTOCOL.md §2: "Requests larger than 1024 bytes of payload get
// 4.13"). libcoap cannot send this (it always goes block-wise above 1024
// bytes), so the datagram is written by hand.
//
// Regression: coapsrv set go-coap's MaxMessageSize to 1280 bytes, and go-coap
// silently dropped any datagram over that (logging "max message size(1280) was
// exceeded") before the size middleware could answer.
func TestOversizedSingleDatagramAnswered413(t *testing.T) {
	ch, _ := startCH(t)
	for _, n := range []int{1025, 1250, 2000, 8000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			// RFC 7252 §3: Ver 1, CON, TKL 1 | POST | message ID | token,
			// then Uri-Path "join" (option 11), Content-Format 18 (option 12),
			// the payload marker and the payload.
			msg := []byte{0x41, 0x02, 0x12, 0x34, 0x7e, 0xb4, 'j', 'o', 'i', 'n', 0x11, 18, 0xff}
			msg = append(msg, bytes.Repeat([]byte{0xa5}, n)...)
			code, diag := exchangeRaw(t, ch.Addr(), msg)
			if code != "4.13" || diag != "too large" {
				t.Errorf("%d-byte payload in a %d-byte datagram: got %q %q, want 4.13 too large", n, len(msg), code, diag)
			}
		})
	}
}

// exchangeRaw sends one datagram and returns the response code and payload,
// or "no answer" after 3 s.
func exchangeRaw(t *testing.T, addr string, msg []byte) (code, payload string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "no answer", err.Error()
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		t.Fatalf("answer is not CoAP: %v: %x", err, buf[:n])
	}
	if m.MessageID != 0x1234 || !bytes.Equal(m.Token, msg[4:5]) {
		t.Fatalf("answer does not match the request: %v", &m)
	}
	return fmt.Sprintf("%d.%02d", m.Code>>5, m.Code&0x1f), string(m.Payload)
}
