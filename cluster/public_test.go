package cluster_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/wire"
)

// TestClusterInfo: GET /cluster is the cluster's facts signed by the CH key,
// the same bytes every time (signed once), and the same facts as text.
func TestClusterInfo(t *testing.T) {
	e := newEnv(t, func(c *cluster.Config) { c.Radius = 750 })
	b, err := e.core.ClusterInfo()
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseSign1(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(&chKey().PublicKey, wire.AADCluster); err != nil {
		t.Fatal(err)
	}
	var info wire.ClusterInfo
	if err := wire.Decode(s.Payload, &info); err != nil {
		t.Fatal(err)
	}
	thumb := e.keys.Thumbprint()
	if info.Cluster != clusterID || info.Lat != here.Lat || info.Lon != here.Lon || info.Radius != 750 ||
		!bytes.Equal(info.Thumbprint, thumb[:]) || !bytes.Equal(info.Key, e.keys.COSEKey()) || !bytes.Equal(s.KID, thumb[:]) {
		t.Errorf("cluster info %+v", info)
	}
	if again, _ := e.core.ClusterInfo(); !bytes.Equal(again, b) {
		t.Error("GET /cluster signed again")
	}
	text, err := e.core.ClusterText()
	want := fmt.Sprintf("cluster %s\nposition 48.856600,2.352200\nradius 750 m\nch-key-thumbprint %s\nadmission open\n", clusterID, hex.EncodeToString(thumb[:]))
	if err != nil || text != want {
		t.Errorf("ClusterText = %q, %v; want %q", text, err, want)
	}
	if _, fresh := e.keys.EchoFresh(e.core.Echo(addr), addr, e.now); !fresh {
		t.Error("Echo is not fresh for its address")
	}
	if e.core.Config().Radius != 750 || e.core.Config().MemberTTL != cluster.DefaultMemberTTL {
		t.Errorf("Config %+v", e.core.Config())
	}
}

// TestLedgerHead: GET /ledger/head is the ledger's head signed by the CH,
// signed once per head: asked again while the ledger has not moved, it is
// the same bytes (an ES256 signature is randomized: signed again, it would
// differ), so an unauthenticated GET costs no signature; once the ledger
// moves, the new head.
func TestLedgerHead(t *testing.T) {
	e := newEnv(t)
	e.device("a").mustJoin()
	ref, ms, _ := e.ledger.Head()
	b, err := e.core.LedgerHead()
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseSign1(b)
	if err != nil || s.Verify(&chKey().PublicKey, wire.AADHead) != nil {
		t.Fatalf("head not signed by the CH: %v", err)
	}
	var head wire.LedgerHead
	if err := wire.Decode(s.Payload, &head); err != nil {
		t.Fatal(err)
	}
	if head.Height != 1 || !bytes.Equal(head.Hash, ref.Hash[:]) || head.TimeMS != uint64(ms) {
		t.Errorf("head %+v", head)
	}
	text, err := e.core.LedgerHeadText()
	if err != nil || !strings.HasPrefix(text, fmt.Sprintf("height 1\nhash %x\n", ref.Hash)) {
		t.Errorf("LedgerHeadText = %q, %v", text, err)
	}
	if again, err := e.core.LedgerHead(); err != nil || !bytes.Equal(again, b) {
		t.Errorf("GET /ledger/head signed again while the ledger did not move (%v)", err)
	}
	e.device("b").mustJoin()
	moved, err := e.core.LedgerHead()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := wire.ParseSign1(moved); err != nil || wire.Decode(s.Payload, &head) != nil || head.Height != 2 {
		t.Errorf("head after a join: %+v, %v", head, err)
	}
}

// TestErrorsRead: rejections read as the protocol's diagnostics.
func TestErrorsRead(t *testing.T) {
	r := &cluster.Refusal{Reason: cluster.ErrPeerNotMember, Detail: "left"}
	if r.Error() != "peer not a member: left" || !errors.Is(r, cluster.ErrPeerNotMember) {
		t.Errorf("Refusal reads %q", r.Error())
	}
	if (&cluster.EchoRequired{}).Error() != "echo required" {
		t.Error("EchoRequired text")
	}
}
