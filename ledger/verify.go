package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/internal/echo"
	"github.com/iotguard/iotguard/wire"
)

// progressEvery is how many blocks Verify checks between progress calls.
const progressEvery = 256

// Verify walks the chain from genesis in one read transaction and checks, for
// every block: that heights run 0, 1, 2, … without gaps up to the head in
// meta; that the stored bytes are a deterministically encoded block of the
// height its key says; the cluster ID; the previous-hash link; that times do
// not go backwards and no event is dated after its block; the events hash; the signature (with Options.Verifier);
// that every event replays through the state machine, and every join's
// evidence and signed freshness (signedFreshness); and that the stored
// Merkle tree nodes over it are the ones the block hashes give. It returns
// the first failure as a *BadBlockError. Then it compares the replayed index with
// the devices bucket and the head in meta; a difference is an error wrapping
// ErrIndexMismatch that names the device.
//
// progress, if not nil, is called with the height just checked and the number
// of blocks every progressEvery blocks and after the last block.
//
// IMPORTANT: the read transaction lasts for the whole walk. Appends keep
// working, but one that needs the file to grow waits until Verify returns, so
// progress must not wait for an Append.
func (l *Bolt) Verify(ctx context.Context, progress func(height, total uint64)) error {
	if l.verifier == nil {
		return fmt.Errorf("failed to verify ledger %s: %w", l.path, ErrNoVerifier)
	}
	return l.view(func(tx *bolt.Tx) error {
		return verifyTx(ctx, tx, l.cluster, l.verifier, progress)
	})
}

func verifyTx(ctx context.Context, tx *bolt.Tx, cluster string, v Verifier, progress func(height, total uint64)) error {
	var head headRecord
	if err := wire.Unmarshal(tx.Bucket(bucketMeta).Get(keyHead), &head); err != nil {
		return fmt.Errorf("failed to verify ledger: failed to read head: %w", err)
	}
	total := head.Ref.Height + 1

	var kc *keyChain
	if chain, ok := v.(KeyChain); ok && len(chain.Keys()) > 0 {
		var err error
		if kc, err = newKeyChain(chain.Keys(), "the data directory"); err != nil {
			return err
		}
	}
	idx := newMemIndex()
	tree, err := newTreeCheck(tx)
	if err != nil {
		return fmt.Errorf("failed to verify ledger: %w", err)
	}
	var (
		want     uint64 // the height the next key must have
		prev     [32]byte
		prevTime int64
	)
	c := tx.Bucket(bucketBlocks).Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		if want%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("failed to verify ledger: %w", err)
			}
			if progress != nil && want > 0 {
				progress(want-1, total)
			}
		}
		if len(k) != 8 {
			return &BadBlockError{Height: want, Reason: fmt.Sprintf("malformed key %x", k)}
		}
		height := binary.BigEndian.Uint64(k)
		if height != want {
			return &BadBlockError{Height: want, Reason: "missing"}
		}
		if height > head.Ref.Height {
			return &BadBlockError{Height: height, Reason: fmt.Sprintf("beyond the head %d recorded in meta", head.Ref.Height)}
		}
		ck, err := checkBlock(raw, height, prev, prevTime, cluster, v, kc, idx)
		if err == nil {
			err = tree.add(ck.Hash)
		}
		if err != nil {
			return &BadBlockError{Height: height, Reason: err.Error()}
		}
		prev, prevTime = ck.Hash, ck.time
		want++
	}
	if want != total {
		return &BadBlockError{Height: want, Reason: fmt.Sprintf("missing (meta head is %d)", head.Ref.Height)}
	}
	if progress != nil {
		progress(head.Ref.Height, total)
	}
	if kc != nil {
		if err := kc.end(); err != nil {
			return err
		}
	}
	if head.Ref.Hash != prev || head.Time != prevTime {
		return fmt.Errorf("failed to verify ledger: meta head differs from block %d: %w", head.Ref.Height, ErrIndexMismatch)
	}
	if err := tree.finish(total); err != nil {
		return err
	}
	if err := compareIndex(tx.Bucket(bucketDevices), idx.devices); err != nil {
		return err
	}
	if err := compareEnrollments(tx.Bucket(bucketEnrollments), idx.enrollments); err != nil {
		return err
	}
	return compareCounts(tx, idx.devices)
}

// compareCounts checks the stored Counts (if the ledger has them yet) against
// the replayed index.
func compareCounts(tx *bolt.Tx, idx map[string]Device) error {
	if tx.Bucket(bucketMeta).Get(keyCounts) == nil {
		return nil
	}
	stored, err := loadCounts(tx)
	if err != nil {
		return err
	}
	var want Counts
	for _, d := range idx {
		want.add(d.Status, 1)
	}
	if stored != want {
		return fmt.Errorf("failed to verify device counts: stored %+v, the chain gives %+v: %w", stored, want, ErrIndexMismatch)
	}
	return nil
}

// checked is what checkBlock hands to the next block.
type checked struct {
	BlockRef
	time   int64
	events []Event
}

// checkBlock checks one stored block against its predecessor and replays its
// events into idx. With kc, the signature is checked under the key in force
// (following a rotation); without, by v, and a rotation is an error. The
// error text becomes a BadBlockError reason.
func checkBlock(raw []byte, height uint64, prev [32]byte, prevTime int64, cluster string, v Verifier, kc *keyChain, idx *memIndex) (checked, error) {
	blk, err := DecodeBlock(raw)
	if err != nil {
		return checked{}, err
	}
	h := blk.Header
	switch {
	case h.Height != height:
		return checked{}, fmt.Errorf("header claims height %d", h.Height)
	case h.Cluster != cluster:
		return checked{}, fmt.Errorf("cluster %q, want %q", h.Cluster, cluster)
	case h.Prev != prev:
		return checked{}, fmt.Errorf("prev hash mismatch")
	case height > 0 && h.Time < prevTime:
		return checked{}, fmt.Errorf("time %d before previous block's %d", h.Time, prevTime)
	case height == 0 && len(blk.Events) != 0:
		return checked{}, fmt.Errorf("genesis block with events")
	case height > 0 && len(blk.Events) == 0:
		return checked{}, fmt.Errorf("block without events")
	}
	for i, ev := range blk.Events {
		if ev.Time > h.Time {
			return checked{}, fmt.Errorf("event %d (%s of %q) dated %d, after its block's time %d", i, ev.Type, ev.Device, ev.Time, h.Time)
		}
	}
	eh, err := HashEvents(blk.Events)
	if err != nil {
		return checked{}, err
	}
	if eh != h.Events {
		return checked{}, fmt.Errorf("events hash mismatch")
	}
	hb, err := h.encode()
	if err != nil {
		return checked{}, err
	}
	if kc != nil {
		if err := kc.block(cluster, blk.Events, hb, blk.Sig); err != nil {
			return checked{}, err
		}
	} else {
		if err := v.Verify(hb, blk.Sig); errors.Is(err, wire.ErrBadSignature) {
			return checked{}, err // no "bad signature: bad signature"
		} else if err != nil {
			return checked{}, fmt.Errorf("bad signature: %v", err)
		}
		if to, _ := rotatedTo(blk.Events); to != nil {
			return checked{}, fmt.Errorf("a key rotation, and the verifier knows one key only")
		}
	}
	ref := BlockRef{Height: height, Hash: sha256Sum(hb)}
	for i, ev := range blk.Events {
		if err := apply(idx, ev, ref); err != nil {
			return checked{}, fmt.Errorf("event %d (%s): %v", i, ev.Type, err)
		}
		if ev.Type != EventJoin {
			continue
		}
		req, err := joinEvidence(ev, true)
		if err == nil && req.Cluster != cluster {
			err = fmt.Errorf("join of device %q: evidence names cluster %q", ev.Device, req.Cluster)
		}
		if err == nil {
			err = signedFreshness(ev, req, height)
		}
		if err != nil {
			return checked{}, fmt.Errorf("event %d (%s): %v", i, ev.Type, err)
		}
	}
	return checked{BlockRef: ref, time: h.Time, events: blk.Events}, nil
}

// signedFreshness checks that join ev, in the block at height, records the
// freshness its device signed: FreshAt is the ledger height stamped in the
// echo of its request (internal/echo), and below the block (an echo carries
// a committed height); its time is within the echo's lifetime after the
// echo's time (the CH took the join while the echo was fresh), so a CH
// cannot backdate a join to before its device asked. The state machine refuses a rejoin signed before the
// device's latest event by FreshAt alone (ErrStale); unchecked here, a CH
// could replay a join its device signed before leaving as a rejoin after it,
// claiming the leave's height, and the chain would verify.
func signedFreshness(ev Event, req wire.JoinRequest, height uint64) error {
	echoSec, at, ok := echo.Stamp(req.Echo)
	switch {
	case !ok && ev.FreshAt == 0:
		return nil // claims no freshness: a first join (the state machine refuses a rejoin without), or one from before echoes carried a height
	case !ok:
		return fmt.Errorf("join of device %q records freshness at height %d, its signed request carries no echo with a height", ev.Device, ev.FreshAt)
	case at != ev.FreshAt:
		return fmt.Errorf("join of device %q records freshness at height %d, its device signed an echo of height %d", ev.Device, ev.FreshAt, at)
	case at >= height:
		return fmt.Errorf("join of device %q signed over an echo of height %d, not below its block", ev.Device, at)
	case ev.Time < echoSec*1000 || ev.Time-echoSec*1000 >= (echo.Lifetime+time.Second).Milliseconds():
		return fmt.Errorf("join of device %q recorded at %d ms, not within the lifetime of the echo it signed, made at %d s", ev.Device, ev.Time, echoSec)
	}
	return nil
}

// compareIndex reports the first device, in ID order, whose stored record is
// not exactly the replayed one, or that exists on one side only.
func compareIndex(b *bolt.Bucket, idx map[string]Device) error {
	return compareRecords(b, idx, "index record of device", func(id string, stored []byte) string {
		var got Device
		if err := wire.Unmarshal(stored, &got); err != nil {
			return fmt.Sprintf("undecodable: %v", err)
		}
		return "differs in " + strings.Join(diffDevices(got, idx[id]), ", ")
	})
}

// compareEnrollments reports the first enrollment, in ID order, whose stored
// record is not exactly the replayed one, or that exists on one side only.
func compareEnrollments(b *bolt.Bucket, replayed map[string]Enrollment) error {
	return compareRecords(b, replayed, "enrollment of", func(string, []byte) string { return "differs from the replayed record" })
}

// compareRecords reports the first record (what: its kind), in key order,
// whose stored bytes in b are not exactly the encoding of the replayed one,
// or that exists on one side only; differs says how a stored record differs.
// A nil bucket holds none.
func compareRecords[R any](b *bolt.Bucket, replayed map[string]R, what string, differs func(id string, stored []byte) string) error {
	ids := make([]string, 0, len(replayed))
	for id := range replayed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	mismatch := func(id, why string) error {
		return fmt.Errorf("failed to verify %s %q: %s: %w", what, id, why, ErrIndexMismatch)
	}
	i := 0
	if b != nil {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id := string(k)
			if i < len(ids) && ids[i] < id {
				return mismatch(ids[i], "missing from the index")
			}
			if i == len(ids) || ids[i] != id {
				return mismatch(id, "not produced by the chain")
			}
			i++
			want, err := wire.Marshal(replayed[id])
			if err != nil {
				return fmt.Errorf("failed to encode %s %q: %w", what, id, err)
			}
			if !bytes.Equal(v, want) {
				return mismatch(id, differs(id, v))
			}
		}
	}
	if i < len(ids) {
		return mismatch(ids[i], "missing from the index")
	}
	return nil
}

// diffDevices names the fields in which a and b differ.
func diffDevices(a, b Device) []string {
	var d []string
	add := func(name string, same bool) {
		if !same {
			d = append(d, name)
		}
	}
	add("ID", a.ID == b.ID)
	add("Key", bytes.Equal(a.Key, b.Key))
	add("Status", a.Status == b.Status)
	add("Joined", a.Joined == b.Joined)
	add("Updated", a.Updated == b.Updated)
	add("DeviceNonce", bytes.Equal(a.DeviceNonce, b.DeviceNonce))
	add("CHNonce", bytes.Equal(a.CHNonce, b.CHNonce))
	add("Expires", a.Expires == b.Expires)
	add("Lat", a.Lat == b.Lat)
	add("Lon", a.Lon == b.Lon)
	if len(d) == 0 {
		d = append(d, "encoding")
	}
	return d
}
