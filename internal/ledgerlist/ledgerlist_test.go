package ledgerlist_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/internal/ledgerlist"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
)

// blocks are a genesis block and a block with one event of each kind that
// has a peer, a reason, a session ID or secrets that must not be listed.
func blocks(t *testing.T) []ledger.Block {
	t.Helper()
	genesis := ledger.Block{Header: ledger.Header{Height: 0, Time: 1_700_000_000_000, Cluster: "c"}}
	h, err := genesis.Header.Hash()
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{0x5e}, 16)
	return []ledger.Block{genesis, {
		Header: ledger.Header{Height: 1, Prev: h, Time: 1_700_000_000_123, Cluster: "c"},
		Events: []ledger.Event{
			{Type: ledger.EventJoin, Device: "sensor-a", Time: 1_700_000_000_100, Key: secret, DeviceNonce: secret, CHNonce: secret, Request: secret, Expires: 1_700_086_400},
			{Type: ledger.EventSession, Device: "sensor-b", Peer: "sensor-a", Time: 1_700_000_000_101, SessionID: []byte{0xab, 0xcd}, Expires: 1_700_003_600},
			{Type: ledger.EventRevoke, Device: "sensor-c", Time: 1_700_000_000_102, Reason: `stolen "twice"`},
			{Type: ledger.EventVerifyWarning, Device: "sensor-b", Peer: "ghost", Time: 1_700_000_000_103, Reason: "unknown"},
		},
	}}
}

func list(t *testing.T, format string) string {
	t.Helper()
	var out bytes.Buffer
	show, err := ledgerlist.Printer(&out, format, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks(t) {
		if err := show(b); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

func TestText(t *testing.T) {
	bs := blocks(t)
	h0, _ := bs[0].Header.Hash()
	h1, _ := bs[1].Header.Hash()
	want := "block 0 " + hex.EncodeToString(h0[:8]) + " 2023-11-14T22:13:20Z\n" +
		"block 1 " + hex.EncodeToString(h1[:8]) + " 2023-11-14T22:13:20.123Z\n" +
		"  join           sensor-a\n" +
		"  session        sensor-b peer=sensor-a\n" +
		"  revoke         sensor-c reason=\"stolen \\\"twice\\\"\"\n" +
		"  verify-warning sensor-b peer=ghost reason=\"unknown\"\n"
	if got := list(t, ledgerlist.Text); got != want {
		t.Errorf("text listing:\n%s\nwant:\n%s", got, want)
	}
}

func TestJSON(t *testing.T) {
	bs := blocks(t)
	out := list(t, ledgerlist.JSON)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(bs) {
		t.Fatalf("%d lines for %d blocks:\n%s", len(lines), len(bs), out)
	}
	if !strings.Contains(lines[0], `"events":[]`) {
		t.Errorf("genesis: events must be [], not null or absent: %s", lines[0])
	}
	h0, _ := bs[0].Header.Hash()
	h1, _ := bs[1].Header.Hash()
	want := `{"height":1,"hash":"` + hex.EncodeToString(h1[:]) + `","prev":"` + hex.EncodeToString(h0[:]) + `","time":"2023-11-14T22:13:20.123Z","events":[` +
		`{"type":"join","device":"sensor-a","time":"2023-11-14T22:13:20.1Z","expires":1700086400},` +
		`{"type":"session","device":"sensor-b","peer":"sensor-a","time":"2023-11-14T22:13:20.101Z","expires":1700003600,"session_id":"abcd"},` +
		`{"type":"revoke","device":"sensor-c","time":"2023-11-14T22:13:20.102Z","reason":"stolen \"twice\""},` +
		`{"type":"verify-warning","device":"sensor-b","peer":"ghost","time":"2023-11-14T22:13:20.103Z","reason":"unknown"}]}`
	if lines[1] != want {
		t.Errorf("block 1:\n%s\nwant:\n%s", lines[1], want)
	}
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d is not JSON: %s", i, l)
		}
	}
}

// No format lists a key, a nonce or the signed join request.
func TestNoSecrets(t *testing.T) {
	for _, f := range []string{ledgerlist.Text, ledgerlist.JSON} {
		out := list(t, f)
		for _, s := range []string{strings.Repeat("5e", 4), "Xl5eXl5e"} { // hex, base64
			if strings.Contains(out, s) {
				t.Errorf("%s listing shows secret bytes (%s):\n%s", f, s, out)
			}
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	for _, f := range []string{"", "yaml", "JSON"} {
		if _, err := ledgerlist.Printer(new(bytes.Buffer), f, nil); !errors.Is(err, ledgerlist.ErrFormat) {
			t.Errorf("Printer(%q): %v, want ErrFormat", f, err)
		}
	}
}

// TestRecords: with the grant log, a session batch lists its audit records
// under it (a pruned one says so); without it, the batch alone.
func TestRecords(t *testing.T) {
	logged := map[uint64][]ledger.Event{1: {
		{Type: ledger.EventSession, Device: "sensor-b", Peer: "sensor-a", Time: 1_700_000_000_101, SessionID: []byte{0xab}, Expires: 1_700_003_600},
		{Type: ledger.EventVerifyWarning, Device: "sensor-b", Peer: "ghost", Time: 1_700_000_000_103, Reason: "unknown"},
	}}
	b := ledger.Block{Header: ledger.Header{Height: 3, Time: 1_700_000_001_000, Cluster: "c"}, Events: []ledger.Event{
		{Type: ledger.EventSessionBatch, Device: "c", Time: 1_700_000_000_900, Batch: 1, Count: 2, Root: bytes.Repeat([]byte{0xee}, 32)},
		{Type: ledger.EventSessionBatch, Device: "c", Time: 1_700_000_000_950, Batch: 2, Count: 5, Root: bytes.Repeat([]byte{0xdd}, 32)},
		ledger.GrantsPrunedEvent("c", 3, time.UnixMilli(1_700_000_000_960)),
	}}
	records := func(seq uint64) ([]ledger.Event, error) { return logged[seq], nil }
	show := func(format string, records ledgerlist.Records) string {
		var out bytes.Buffer
		p, err := ledgerlist.Printer(&out, format, records)
		if err != nil {
			t.Fatal(err)
		}
		if err := p(b); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := show(ledgerlist.Text, records)
	want := "  session-batch  c batch=1 records=2 root=eeeeeeeeeeeeeeee\n" +
		"    session        sensor-b peer=sensor-a\n" +
		"    verify-warning sensor-b peer=ghost reason=\"unknown\"\n" +
		"  session-batch  c batch=2 records=5 root=dddddddddddddddd\n" +
		"    (records pruned)\n" +
		"  grants-pruned  c below-batch=3\n"
	if _, events, _ := strings.Cut(text, "\n"); events != want {
		t.Errorf("text:\n%s\nwant events:\n%s", text, want)
	}
	js := show(ledgerlist.JSON, records)
	for _, w := range []string{`"batch":1,"count":2,"root":"` + strings.Repeat("ee", 32) + `","records":[{"type":"session","device":"sensor-b","peer":"sensor-a",`,
		`{"type":"verify-warning","device":"sensor-b","peer":"ghost","time":"2023-11-14T22:13:20.103Z","reason":"unknown"}]}`,
		`"batch":2,"count":5,"root":"` + strings.Repeat("dd", 32) + `","pruned":true}`,
		`{"type":"grants-pruned","device":"c","time":"2023-11-14T22:13:20.96Z","batch":3}`} {
		if !strings.Contains(js, w) {
			t.Errorf("json %s\nlacks %s", js, w)
		}
	}
	if out := show(ledgerlist.Text, nil); strings.Contains(out, "sensor-b") || strings.Contains(out, "(records pruned)") {
		t.Errorf("records listed without the grant log:\n%s", out)
	}
}

// TestTextShowsEscapes: IDs are listed as they are only when they are plain
// IDs. The ledger takes any UTF-8 as the device and peer of a warning, so a
// CH (or whoever wrote the file) can put a terminal's escape sequence there;
// the text listing an auditor reads must show it, quoted, not send it to the
// terminal. Before, 'ledger list' printed it raw.
func TestTextShowsEscapes(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keysvc.New(priv, "c")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Cluster: "c", Signer: key, Verifier: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	const asker, subject = "m\x1b]0;owned\a", "ghost\x1b[2J\u009b31m"
	if _, err := l.Append(t.Context(), ledger.Event{Type: ledger.EventVerifyWarning, Device: asker, Peer: subject, Time: 1, Reason: "unknown"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	show, err := ledgerlist.Printer(&out, ledgerlist.Text, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Blocks(0, show); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\a\u009b") {
		t.Fatalf("the listing carries the IDs' control characters:\n%q", out.String())
	}
	want := fmt.Sprintf("  verify-warning %q peer=%q reason=\"unknown\"\n", asker, subject)
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("listing:\n%s\nwant it to end with\n%s", out.String(), want)
	}
}
