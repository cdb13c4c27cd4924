package audit_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/audit"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// TestCheckGrant: a grant's proof from the grant log (what 'ledger
// grant-proof' prints) proves the grant against an export's chain — also
// once the CH has pruned the record and the export carries none of its
// batch — and a claim changed in any part does not.
func TestCheckGrant(t *testing.T) {
	s := grantScene(t)
	p, err := ledger.ProveGrant(s.l, s.g, cluster, []byte("sid-m2-m1-1"))
	if err != nil {
		t.Fatal(err)
	}
	claim := audit.NewGrantClaim(cluster, p)
	if _, err := s.g.Prune(t.Context(), t0.Add(time.Minute), s.recordPrunes, nil); err != nil { // batch 1, the claim's
		t.Fatal(err)
	}
	rep, err := s.verify(s.export(t, s.g))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Grants.PrunedBatches != 1 {
		t.Fatalf("the export still carries the pruned batch: %+v", rep.Grants)
	}
	grant, err := rep.CheckGrant(claim)
	if err != nil || string(grant.SessionID) != "sid-m2-m1-1" || grant.Device != "m2" || grant.Peer != "m1" {
		t.Fatalf("CheckGrant = %+v, %v", grant, err)
	}

	flip := func(h string) string { // the same length, one bit changed
		b, _ := hex.DecodeString(h)
		b[len(b)-1] ^= 1
		return hex.EncodeToString(b)
	}
	other, err := ledger.ProveGrant(s.l, s.g, cluster, []byte("sid-m1-m2-0")) // batch 2, not pruned
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(c *audit.GrantClaim){
		"another cluster":          func(c *audit.GrantClaim) { c.Cluster = "elsewhere" },
		"a batch not on the chain": func(c *audit.GrantClaim) { c.Batch = 9 },
		"another block":            func(c *audit.GrantClaim) { c.Block++ },
		"another count":            func(c *audit.GrantClaim) { c.Count++ },
		"another root":             func(c *audit.GrantClaim) { c.Root = flip(c.Root) },
		"another index":            func(c *audit.GrantClaim) { c.Index = 2 },
		"a record changed":         func(c *audit.GrantClaim) { c.Record = flip(c.Record) },
		"a path hash changed":      func(c *audit.GrantClaim) { c.Path[0] = flip(c.Path[0]) },
		"a path cut short":         func(c *audit.GrantClaim) { c.Path = c.Path[:len(c.Path)-1] },
		"a record not hex":         func(c *audit.GrantClaim) { c.Record = "zz" },
		"another batch's record":   func(c *audit.GrantClaim) { c.Record = hex.EncodeToString(other.Record) },
	} {
		t.Run(name, func(t *testing.T) {
			c := claim
			c.Path = append([]string(nil), claim.Path...)
			change(&c)
			if g, err := rep.CheckGrant(c); !errors.Is(err, audit.ErrGrantClaim) {
				t.Errorf("CheckGrant = %+v, %v; want ErrGrantClaim", g, err)
			}
		})
	}
}

// TestCheckGrantOfUnknownDevice: a claim whose record is included under its
// batch's root but names a device that had not joined before that block is
// not proven (the rule every grant record is checked by).
func TestCheckGrantOfUnknownDevice(t *testing.T) {
	s := newScene(t)
	s.join(t, "m2")
	s.batch(t, records(t, 2, "m2", "ghost"), t0)
	p, err := ledger.ProveGrant(s.l, s.g, cluster, []byte("sid-m2-ghost-0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Prune(t.Context(), t0.Add(time.Minute), s.recordPrunes, nil); err != nil { // or the export itself would be refused
		t.Fatal(err)
	}
	rep, err := s.verify(s.export(t, s.g))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := rep.CheckGrant(audit.NewGrantClaim(cluster, p)); !errors.Is(err, audit.ErrGrantClaim) || !errors.Is(err, ledger.ErrUnknownDevice) {
		t.Errorf("CheckGrant = %+v, %v; want ErrGrantClaim and ErrUnknownDevice", g, err)
	}
}

// TestCheckWarningClaim: any audit record of a batch — here a warning — is
// proven by its batch and index (ledger.ProveAuditRecord), as a grant is by
// its session ID; a record the batch does not hold has no proof.
func TestCheckWarningClaim(t *testing.T) {
	s := newScene(t)
	s.join(t, "m1")
	s.join(t, "m2")
	warning, err := wire.Marshal(ledger.Event{Type: ledger.EventVerifyWarning, Device: "m2", Peer: "ghost", Time: t0.UnixMilli(), Reason: "unknown"})
	if err != nil {
		t.Fatal(err)
	}
	s.batch(t, append(records(t, 1, "m2", "m1"), warning), t0)
	p, err := ledger.ProveAuditRecord(s.l, s.g, cluster, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.verify(s.export(t, s.g))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rep.CheckGrant(audit.NewGrantClaim(cluster, p))
	if err != nil || got.Type != ledger.EventVerifyWarning || got.Device != "m2" || got.Peer != "ghost" || got.Reason != "unknown" {
		t.Fatalf("CheckGrant = %+v, %v; want the warning", got, err)
	}
	if _, err := ledger.ProveAuditRecord(s.l, s.g, cluster, 1, 2); !errors.Is(err, ledger.ErrNoRecord) {
		t.Errorf("proof of a record the batch does not hold: %v, want ErrNoRecord", err)
	}
}

// TestGrantClaimShowsEscapes: a warning record may name any UTF-8 as its
// subject and reason, and a claim file comes from whoever holds it; what
// 'audit verify-export --grant-proof' prints of either — the proven record
// (Describe), or why a claim is not proven — shows a terminal's escape
// sequence quoted, never raw. Before, both printed it raw.
func TestGrantClaimShowsEscapes(t *testing.T) {
	s := newScene(t)
	s.join(t, "m2")
	warning, err := wire.Marshal(ledger.Event{Type: ledger.EventVerifyWarning, Device: "m2", Peer: "ghost\x1b[2J",
		Time: t0.UnixMilli(), Reason: "unknown\x1b]0;owned\a"})
	if err != nil {
		t.Fatal(err)
	}
	s.batch(t, [][]byte{warning}, t0)
	p, err := ledger.ProveAuditRecord(s.l, s.g, cluster, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.verify(s.export(t, s.g))
	if err != nil {
		t.Fatal(err)
	}
	claim := audit.NewGrantClaim(cluster, p)
	got, err := rep.CheckGrant(claim)
	if err != nil {
		t.Fatal(err)
	}
	if line := audit.Describe(got); strings.ContainsAny(line, "\x1b\a") || !strings.Contains(line, `"ghost\x1b[2J"`) {
		t.Errorf("Describe = %q, want the subject and reason quoted", line)
	}
	claim.Root = "\x1b]0;owned\a"
	if _, err := rep.CheckGrant(claim); !errors.Is(err, audit.ErrGrantClaim) || strings.ContainsAny(err.Error(), "\x1b\a") {
		t.Errorf("CheckGrant of a claim with an escape as its root = %q, want ErrGrantClaim without control characters", err)
	}
}

// FuzzCheckGrant: a grant-proof file is JSON from whoever holds the grant;
// CheckGrant never panics on what it decodes to, fails only with
// ErrGrantClaim, and proves only a record of the batch it names. The seed
// is a valid claim.
func FuzzCheckGrant(f *testing.F) {
	s := grantScene(f)
	p, err := ledger.ProveGrant(s.l, s.g, cluster, []byte("sid-m2-m1-1"))
	if err != nil {
		f.Fatal(err)
	}
	seed, err := json.Marshal(audit.NewGrantClaim(cluster, p))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	rep, err := s.verify(s.export(f, s.g))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c audit.GrantClaim
		if json.Unmarshal(b, &c) != nil {
			return
		}
		grant, err := rep.CheckGrant(c)
		switch {
		case err == nil && grant.Type != ledger.EventSession && grant.Type != ledger.EventVerifyWarning:
			t.Fatalf("proved a %s record", grant.Type)
		case err != nil && !errors.Is(err, audit.ErrGrantClaim):
			t.Fatalf("CheckGrant: %v is not ErrGrantClaim", err)
		}
	})
}
