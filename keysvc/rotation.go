package keysvc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/wire"
)

// A rotation (docs/PROTOCOL.md §6.1) goes:
//
//  1. PrepareRotation draws the next key, writes it to NextFile and returns
//     the rotation signed by the key in force.
//  2. The ledger commits the rotate event in a block signed by the next key
//     (SignWith) and then calls Rotated: the next key is in force.
//  3. FinishRotation records the height in the key files: the old key moves
//     to RetiredFile, the new one to KeyFile, NextFile goes.
//
// A crash between 1 and 3 leaves NextFile behind; the cluster head's start
// finishes the rotation if the ledger holds it (CompleteRotation) or
// abandons it (AbandonRotation).

// PrepareRotation draws the next CH key, writes it to dir/ch-key-next.pem
// (0600) and returns the rotation (a COSE_Sign1 by the key in force) and
// the next key as a COSE_Key. ErrRotating if a rotation is in progress.
func (s *Service) PrepareRotation(dir string, now time.Time) (rotation, next []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != nil {
		return nil, nil, ErrRotating
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate CH key: %w", err)
	}
	k, err := newCHKey(priv, math.MaxUint64) // in force from the rotation's height, set by FinishRotation
	if err != nil {
		return nil, nil, err
	}
	cur := s.keys[len(s.keys)-1]
	payload, err := wire.Marshal(&wire.Rotation{Cluster: s.cluster, Old: cur.coseKey, New: k.coseKey, Time: uint64(now.Unix())})
	if err != nil {
		return nil, nil, err
	}
	if k.rotation, err = wire.Sign1(cur.priv, cur.thumb[:], wire.AADRotation, payload); err != nil {
		return nil, nil, err
	}
	pemKey, err := encodeKey(&chKey{priv: priv, rotation: k.rotation})
	if err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Create(filepath.Join(dir, NextFile), pemKey, 0o600); errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("%w: %s exists (restart the server to finish or abandon it)", ErrRotating, filepath.Join(dir, NextFile))
	} else if err != nil {
		return nil, nil, err
	}
	s.next = k
	return k.rotation, k.coseKey, nil
}

// SignWith signs msg with the next key, whose public key must be newKey. It
// implements ledger.KeyRotator: the rotate event's block is signed by it.
func (s *Service) SignWith(newKey, msg []byte) ([]byte, error) {
	s.mu.RLock()
	k := s.next
	s.mu.RUnlock()
	if k == nil || !bytes.Equal(k.coseKey, newKey) {
		return nil, fmt.Errorf("failed to sign with the next CH key: %w", ErrNoRotation)
	}
	return s.sign(k, msg)
}

// Rotated puts the next key in force. It implements ledger.KeyRotator; the
// ledger calls it once the rotation's block is durable.
func (s *Service) Rotated(newKey []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == nil || !bytes.Equal(s.next.coseKey, newKey) {
		return
	}
	s.keys = append(s.keys, s.next)
	s.next = nil
}

// FinishRotation records that the key in force since the last Rotated
// signs from ledger height h on (the rotation's block) and writes the key
// files: joins at h and later derive K_m with it.
func (s *Service) FinishRotation(dir string, h uint64) error {
	s.mu.Lock()
	s.keys[len(s.keys)-1].from = h
	s.mu.Unlock()
	return CompleteRotation(dir, h)
}

// AbortRotation forgets a prepared rotation whose event was not committed.
func (s *Service) AbortRotation(dir string) error {
	s.mu.Lock()
	s.next = nil
	s.mu.Unlock()
	return AbandonRotation(dir)
}

// CompleteRotation moves the files of dir to a rotation committed at ledger
// height h: the key in force joins RetiredFile, NextFile becomes KeyFile.
// Each step is atomic and the whole is idempotent, so a crash midway is
// finished by calling it again.
func CompleteRotation(dir string, h uint64) error {
	nextPath, curPath, retPath := filepath.Join(dir, NextFile), filepath.Join(dir, KeyFile), filepath.Join(dir, RetiredFile)
	next, err := readKeys(nextPath)
	if err != nil {
		return fmt.Errorf("failed to finish key rotation: %w", err)
	}
	cur, err := readKeys(curPath)
	if err != nil {
		return fmt.Errorf("failed to finish key rotation: %w", err)
	}
	if cur[0].thumb != next[0].thumb { // KeyFile not replaced yet
		retired, err := readKeys(retPath)
		if errors.Is(err, fs.ErrNotExist) {
			retired, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("failed to finish key rotation: %w", err)
		}
		if len(retired) == 0 || retired[len(retired)-1].thumb != cur[0].thumb {
			retired = append(retired, cur[0])
		}
		var b []byte
		for _, k := range retired {
			pemKey, err := encodeKey(k)
			if err != nil {
				return err
			}
			b = append(b, pemKey...)
		}
		if err := atomicfile.Write(retPath, b, 0o600); err != nil {
			return fmt.Errorf("failed to finish key rotation: %w", err)
		}
		next[0].from = h
		pemKey, err := encodeKey(next[0])
		if err != nil {
			return err
		}
		if err := atomicfile.Write(curPath, pemKey, 0o600); err != nil {
			return fmt.Errorf("failed to finish key rotation: %w", err)
		}
	}
	if err := os.Remove(nextPath); err != nil {
		return fmt.Errorf("failed to finish key rotation: %w", err)
	}
	return nil
}

// AbandonRotation removes the next key of a rotation that the ledger does
// not hold.
func AbandonRotation(dir string) error {
	if err := os.Remove(filepath.Join(dir, NextFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to abandon key rotation: %w", err)
	}
	return nil
}

// NextKey returns the public key (COSE_Key) of dir's NextFile, or nil when
// no rotation is in progress.
func NextKey(dir string) ([]byte, error) {
	keys, err := readKeys(filepath.Join(dir, NextFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return keys[0].coseKey, nil
}
