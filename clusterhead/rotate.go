package clusterhead

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// RotateKey replaces the CH key while the CH serves (docs/PROTOCOL.md §6.1):
// keysvc draws the new key and signs the rotation with the old one, the
// ledger records it in a block signed by the new key, and from then on the
// new key signs blocks, joins and GET /cluster. Members that joined under the
// old key keep their member keys. One rotation at a time (a second gets
// keysvc.ErrRotating); a backup waits for it.
func (c *CH) RotateKey(ctx context.Context) (admin.Rotation, error) {
	if _, ok := c.Ledger.(*ledger.Bolt); !ok {
		return admin.Rotation{}, ErrRotationUnsupported
	}
	if !c.keyMu.TryLock() {
		return admin.Rotation{}, fmt.Errorf("%w (or a backup is being taken); try again when it is done", keysvc.ErrRotating)
	}
	defer c.keyMu.Unlock()
	old := c.Keys.Thumbprint()
	rotation, _, err := c.Keys.PrepareRotation(c.dir, time.Now())
	if err != nil {
		return admin.Rotation{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ref, err := c.Core.RotateKey(ctx, rotation, func(ref ledger.BlockRef) error {
		return c.Keys.FinishRotation(c.dir, ref.Height)
	})
	if err != nil {
		if ref.Height == 0 { // not on the ledger: the old key stays in force
			if aerr := c.Keys.AbortRotation(c.dir); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
		return admin.Rotation{}, err
	}
	nu := c.Keys.Thumbprint()
	return admin.Rotation{Old: hex.EncodeToString(old[:]), New: hex.EncodeToString(nu[:]), Height: ref.Height}, nil
}

// recoverRotation finishes or abandons a rotation that a crash interrupted
// (keysvc.NextFile left behind): finished if the ledger in dir holds its
// rotate event, abandoned otherwise.
func recoverRotation(dir string) error {
	next, err := keysvc.NextKey(dir)
	if err != nil || next == nil {
		return err
	}
	l, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{})
	if err != nil {
		return fmt.Errorf("failed to recover key rotation: %w", err)
	}
	var at uint64
	found := false
	err = l.Blocks(0, func(b ledger.Block) error {
		for _, ev := range b.Events {
			if ev.Type != ledger.EventRotate {
				continue
			}
			s, err := wire.ParseSign1(ev.Request)
			if err != nil {
				return err
			}
			var r wire.Rotation
			if err := wire.Decode(s.Payload, &r); err != nil {
				return err
			}
			if bytes.Equal(r.New, next) {
				at, found = b.Header.Height, true
			}
		}
		return nil
	})
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to recover key rotation: %w", err)
	}
	if found {
		return keysvc.CompleteRotation(dir, at)
	}
	return keysvc.AbandonRotation(dir)
}
