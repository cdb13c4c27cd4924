package cluster

import (
	"encoding/hex"
	"fmt"

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
func (c *Core) Echo(addr string) []byte { return c.keys.Echo(addr, c.cfg.Now()) }

// ClusterText is GET /cluster for humans (Accept: text/plain).
func (c *Core) ClusterText() (string, error) {
	thumb := c.keys.Thumbprint()
	return fmt.Sprintf("cluster %s\nposition %.6f,%.6f\nradius %.0f m\nch-key-thumbprint %s\n",
		c.cfg.ID, float64(c.cfg.Position.Lat)/1e6, float64(c.cfg.Position.Lon)/1e6, c.cfg.Radius, hex.EncodeToString(thumb[:])), nil
}

// LedgerHead returns the signed answer of GET /ledger/head.
func (c *Core) LedgerHead() ([]byte, error) {
	ref, t, err := c.ledger.Head()
	if err != nil {
		return nil, fmt.Errorf("failed to read ledger head: %w", err)
	}
	b, err := wire.Marshal(&wire.LedgerHead{Height: ref.Height, Hash: ref.Hash[:], TimeMS: uint64(t)})
	if err != nil {
		return nil, err
	}
	return c.keys.Sign1(wire.AADHead, b)
}

// LedgerHeadText is GET /ledger/head for humans.
func (c *Core) LedgerHeadText() (string, error) {
	ref, t, err := c.ledger.Head()
	if err != nil {
		return "", fmt.Errorf("failed to read ledger head: %w", err)
	}
	return fmt.Sprintf("height %d\nhash %s\ntime_ms %d\n", ref.Height, hex.EncodeToString(ref.Hash[:]), t), nil
}
