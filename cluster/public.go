package cluster

import (
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// ClusterInfo returns the signed answer of GET /cluster (docs/PROTOCOL.md §6).
// What it says never changes while the process runs, so it is signed once:
// an unauthenticated GET must not cost the CH a signature (every join starts
// with one), and devices can recognise an answer they have already verified.
func (c *Core) ClusterInfo() ([]byte, error) {
	c.infoMu.Lock()
	defer c.infoMu.Unlock()
	if c.info == nil {
		b, err := c.signClusterInfo()
		if err != nil {
			return nil, err
		}
		c.info = b
	}
	return c.info, nil
}

func (c *Core) signClusterInfo() ([]byte, error) {
	thumb := c.keys.Thumbprint()
	b, err := wire.Marshal(&wire.ClusterInfo{
		Cluster: c.cfg.ID, Key: c.keys.COSEKey(), Thumbprint: thumb[:],
		Lat: c.cfg.Position.Lat, Lon: c.cfg.Position.Lon, Radius: uint64(c.cfg.Radius),
		Rotations: c.keys.Rotations(),
	})
	if err != nil {
		return nil, err
	}
	return c.keys.Sign1(wire.AADCluster, b)
}

// Echo returns a fresh echo value (docs/PROTOCOL.md §3.1) for the client at
// addr. GET /cluster hands one out, so that a device that reads /cluster
// before joining signs its join once instead of after a 4.01 challenge.
func (c *Core) Echo(addr string) []byte { return c.echo(addr, c.cfg.Now()) }

// echo returns an echo for addr stamped with the ledger's head height: a
// join that signs it was made after every event committed so far, which is
// what the state machine's freshness rule (ledger.ErrStale) compares. If the
// head cannot be read the stamp is 0, which only makes a rejoin stale.
func (c *Core) echo(addr string, now time.Time) []byte {
	head, _, err := c.ledger.Head()
	if err != nil {
		head = ledger.BlockRef{}
	}
	return c.keys.Echo(addr, now, head.Height)
}

// EdgeEchoes returns the CH's echoes as the CoAP edge verifies addresses
// with them (coapedge.Echoer): stamped with the ledger head like every echo
// the CH makes, so the Echo that verified a device's address also makes its
// join fresh (RFC 9175 §2.4, docs/PROTOCOL.md §3.1).
func (c *Core) EdgeEchoes() EdgeEchoes { return EdgeEchoes{c} }

// EdgeEchoes is Core's echoes for the CoAP edge; see Core.EdgeEchoes.
type EdgeEchoes struct{ c *Core }

// Echo returns a fresh echo for addr, stamped with the ledger head.
func (e EdgeEchoes) Echo(addr string, now time.Time) []byte { return e.c.echo(addr, now) }

// EchoFresh reports whether v is an echo of this CH for addr, still fresh.
func (e EdgeEchoes) EchoFresh(v []byte, addr string, now time.Time) bool {
	_, fresh := e.c.keys.EchoFresh(v, addr, now)
	return fresh
}

// ClusterText is GET /cluster for humans (Accept: text/plain), with the
// admission policy in force (enrolled or open).
func (c *Core) ClusterText() (string, error) {
	thumb := c.keys.Thumbprint()
	return fmt.Sprintf("cluster %s\nposition %.6f,%.6f\nradius %.0f m\nch-key-thumbprint %s\nadmission %s\n",
		c.cfg.ID, float64(c.cfg.Position.Lat)/1e6, float64(c.cfg.Position.Lon)/1e6, c.cfg.Radius, hex.EncodeToString(thumb[:]),
		c.cfg.Admission), nil
}

// heads keeps the newest signed ledger head, so that the CH signs at most
// one per head and CH key however many clients ask: an unauthenticated GET
// /ledger/head costs a signature only when the ledger has moved since the
// last one, one per block under a join load, not one per request.
type heads struct {
	mu     sync.Mutex
	ref    ledger.BlockRef
	timeMS int64
	thumb  [32]byte // of the key that signed it
	signed []byte
}

// LedgerHead returns the signed answer of GET /ledger/head.
func (c *Core) LedgerHead() ([]byte, error) {
	ref, t, err := c.ledger.Head()
	if err != nil {
		return nil, fmt.Errorf("failed to read ledger head: %w", err)
	}
	thumb := c.keys.Thumbprint()
	h := &c.heads
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.signed != nil && h.ref == ref && h.timeMS == t && h.thumb == thumb {
		return h.signed, nil
	}
	b, err := wire.Marshal(&wire.LedgerHead{Height: ref.Height, Hash: ref.Hash[:], TimeMS: uint64(t)})
	if err != nil {
		return nil, err
	}
	signed, err := c.keys.Sign1(wire.AADHead, b)
	if err != nil {
		return nil, err
	}
	h.ref, h.timeMS, h.thumb, h.signed = ref, t, thumb, signed
	return signed, nil
}

// LedgerHeadText is GET /ledger/head for humans.
func (c *Core) LedgerHeadText() (string, error) {
	ref, t, err := c.ledger.Head()
	if err != nil {
		return "", fmt.Errorf("failed to read ledger head: %w", err)
	}
	return fmt.Sprintf("height %d\nhash %s\ntime_ms %d\n", ref.Height, hex.EncodeToString(ref.Hash[:]), t), nil
}
