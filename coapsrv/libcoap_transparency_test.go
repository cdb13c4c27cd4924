package coapsrv_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/transparency"
	"github.com/iotguard/iotguard/wire"
)

// TestLibcoapTransparency reads the log's resources with libcoap: they are
// listed in /.well-known/core, the checkpoint reads as text with -A 0 and as
// a COSE_Sign1 by the CH key without, and a proof fetched with a query in
// the URI is CBOR that verifies against that checkpoint.
func TestLibcoapTransparency(t *testing.T) {
	bin := libcoap(t)
	ch, base := startCH(t)
	chtest.Joined(t, ch, "sensor-a") // block 1 its enrollment, block 2 its join

	out := coapClient(t, bin, "-m", "get", base+"/.well-known/core")
	for _, link := range []string{`</ledger/checkpoint>;rt="iotguard.checkpoint";ct="18 0"`,
		`</ledger/proof>;rt="iotguard.proof";ct=60`, `</ledger/consistency>;rt="iotguard.consistency";ct=60`} {
		if !strings.Contains(out.stdout, link) {
			t.Errorf("/.well-known/core lacks %s: %q", link, out.stdout)
		}
	}

	dir := t.TempDir()
	coapClient(t, bin, "-m", "get", "-o", filepath.Join(dir, "cp"), base+"/ledger/checkpoint")
	signed, err := os.ReadFile(filepath.Join(dir, "cp"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := transparency.OpenCheckpoint(signed, ch.Keys.PublicKey(), chtest.Cluster)
	if err != nil || cp.Size != 3 {
		t.Fatalf("checkpoint read by libcoap: %+v, %v", cp, err)
	}
	text := coapClient(t, bin, "-m", "get", "-A", "0", base+"/ledger/checkpoint")
	thumb := ch.Keys.Thumbprint()
	want := fmt.Sprintf("%s\n3\n%s\ntime_ms %d\nkey %x\n", chtest.Cluster, base64.StdEncoding.EncodeToString(cp.Root[:]), cp.TimeMS, thumb)
	if strings.TrimRight(text.stdout, "\n") != strings.TrimRight(want, "\n") {
		t.Errorf("GET -A 0 /ledger/checkpoint = %q, want %q", text.stdout, want)
	}

	coapClient(t, bin, "-m", "get", "-o", filepath.Join(dir, "proof"), base+"/ledger/proof?id=sensor-a&from=1")
	b, err := os.ReadFile(filepath.Join(dir, "proof"))
	if err != nil {
		t.Fatal(err)
	}
	var p wire.InclusionProof
	if err := wire.Decode(b, &p); err != nil {
		t.Fatalf("GET /ledger/proof is not an inclusion proof: %v (%x)", err, b)
	}
	pcp, err := transparency.OpenCheckpoint(p.Checkpoint, ch.Keys.PublicKey(), chtest.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := transparency.VerifyInclusion(pcp, p.Index, [32]byte(p.BlockHash), p.Path); err != nil || p.Index != 2 || p.OldSize != 1 {
		t.Errorf("proof read by libcoap: block %d from %d: %v", p.Index, p.OldSize, err)
	}
	bad := coapClient(t, bin, "-m", "get", base+"/ledger/proof?height=9")
	if !strings.Contains(bad.stderr, "4.04 not in the log") {
		t.Errorf("GET /ledger/proof?height=9: stderr %q, want 4.04 not in the log", bad.stderr)
	}
}
