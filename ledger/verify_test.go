package ledger_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

const tamperHeight = 3

// chainOf5 returns a closed ledger file with blocks 1..5, each holding the
// join of id(height).
func chainOf5(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	l, err := ledger.Open(e.path, e.options())
	if err != nil {
		t.Fatal(err)
	}
	for h := 1; h <= 5; h++ {
		e.clock.ms.Add(1000)
		mustAppend(t, l, join(id(h), id(h)))
	}
	mustVerify(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return e
}

// tamper runs fn in a write transaction on the closed ledger file, as an
// attacker with access to the file would.
func tamper(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(nil, h) }

// flipIn returns a tamper function that flips the lowest bit of the last
// byte of the first occurrence of what (found through the decoded block) in
// the stored block at height h. A block encodes its header first, and an
// event's fields before its evidence, which repeats the ID, key and cluster.
func flipIn(t *testing.T, h uint64, what func(ledger.Block) []byte) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("blocks"))
		raw := bytes.Clone(b.Get(heightKey(h)))
		blk, err := ledger.DecodeBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		needle := what(blk)
		i := bytes.Index(raw, needle)
		if i < 0 {
			t.Fatalf("%q not found in block %d", needle, h)
		}
		raw[i+len(needle)-1] ^= 1
		return b.Put(heightKey(h), raw)
	}
}

// rewrite returns a tamper function that replaces the block at height h with
// fn of it, re-encoded.
func rewrite(t *testing.T, h uint64, fn func(*ledger.Block)) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("blocks"))
		blk, err := ledger.DecodeBlock(b.Get(heightKey(h)))
		if err != nil {
			t.Fatal(err)
		}
		fn(&blk)
		raw, err := ledger.EncodeBlock(blk)
		if err != nil {
			t.Fatal(err)
		}
		return b.Put(heightKey(h), raw)
	}
}

func TestVerifyTamperedBlock(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, e *env) func(*bolt.Tx) error
		height uint64
		reason string // a word the reason must contain
	}{
		{"header prev hash byte", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return flipIn(t, tamperHeight, func(b ledger.Block) []byte { return b.Header.Prev[:] })
		}, tamperHeight, "prev hash"},
		{"header events hash byte", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return flipIn(t, tamperHeight, func(b ledger.Block) []byte { return b.Header.Events[:] })
		}, tamperHeight, "events hash"},
		{"header cluster byte", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return flipIn(t, tamperHeight, func(b ledger.Block) []byte { return []byte(b.Header.Cluster) })
		}, tamperHeight, "cluster"},
		{"header time re-encoded", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return rewrite(t, tamperHeight, func(b *ledger.Block) { b.Header.Time++ })
		}, tamperHeight, "signature"},
		{"event device ID byte", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return flipIn(t, tamperHeight, func(b ledger.Block) []byte {
				// The text-string head 0x68 tells the ID from its copy in Request.
				return append([]byte{0x60 | byte(len(b.Events[0].Device))}, b.Events[0].Device...)
			})
		}, tamperHeight, "events hash"},
		{"event key byte", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return flipIn(t, tamperHeight, func(b ledger.Block) []byte { return b.Events[0].Key })
		}, tamperHeight, "events hash"},
		{"event re-hashed without re-signing", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return rewrite(t, tamperHeight, func(b *ledger.Block) {
				b.Events[0].Expires = 4_000_000_000
				b.Header.Events, _ = ledger.HashEvents(b.Events)
			})
		}, tamperHeight, "signature"},
		{"signature byte", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return flipIn(t, tamperHeight, func(b ledger.Block) []byte { return b.Sig[8:16] })
		}, tamperHeight, "signature"},
		{"signed by another key", func(t *testing.T, e *env) func(*bolt.Tx) error {
			other := newKey(t)
			return rewrite(t, tamperHeight, func(b *ledger.Block) { b.Sig = sign(t, other, b.Header) })
		}, tamperHeight, "signature"},
		{"truncated", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("blocks"))
				raw := b.Get(heightKey(tamperHeight))
				return b.Put(heightKey(tamperHeight), bytes.Clone(raw[:len(raw)-1]))
			}
		}, tamperHeight, "malformed"},
		{"deleted", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error { return tx.Bucket([]byte("blocks")).Delete(heightKey(tamperHeight)) }
		}, tamperHeight, "missing"},
		{"head deleted", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error { return tx.Bucket([]byte("blocks")).Delete(heightKey(5)) }
		}, 5, "missing"},
		{"swapped with its neighbour", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("blocks"))
				x, y := bytes.Clone(b.Get(heightKey(tamperHeight))), bytes.Clone(b.Get(heightKey(tamperHeight+1)))
				if err := b.Put(heightKey(tamperHeight), y); err != nil {
					return err
				}
				return b.Put(heightKey(tamperHeight+1), x)
			}
		}, tamperHeight, "height"},
		// The cluster head's own key signs a block whose event breaks the
		// state machine: the hashes and signature hold, the replay does not.
		{"signed block with conflicting join", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return rewrite(t, tamperHeight, func(b *ledger.Block) {
				b.Events = []ledger.Event{join(id(1), "stolen")}
				b.Header.Events, _ = ledger.HashEvents(b.Events)
				b.Sig = sign(t, e.key, b.Header)
			})
		}, tamperHeight, "bound to another key"},
		// A copy of id(1)'s join signed over an echo made before its block
		// 1: a superseded join replayed.
		{"signed block with a stale rejoin", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return rewrite(t, tamperHeight, func(b *ledger.Block) {
				b.Events = []ledger.Event{signedAt(join(id(1), id(1)), 0)}
				b.Header.Events, _ = ledger.HashEvents(b.Events)
				b.Sig = sign(t, e.key, b.Header)
			})
		}, tamperHeight, "stale join"},
		// A leave dated a day after its block: membership spans read event
		// times, so the member would look current for that day more.
		{"signed block with an event dated after it", func(t *testing.T, e *env) func(*bolt.Tx) error {
			return rewrite(t, tamperHeight, func(b *ledger.Block) {
				b.Events = []ledger.Event{{Type: ledger.EventLeave, Device: id(1), Time: b.Header.Time + 86_400_000}}
				b.Header.Events, _ = ledger.HashEvents(b.Events)
				b.Sig = sign(t, e.key, b.Header)
			})
		}, tamperHeight, "after its block's time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := chainOf5(t)
			tamper(t, e.path, tt.tamper(t, e))
			l := e.openReadOnly(t)
			err := l.Verify(t.Context(), nil)
			var bad *ledger.BadBlockError
			if !errors.As(err, &bad) {
				t.Fatalf("Verify = %v, want *BadBlockError", err)
			}
			if bad.Height != tt.height || !strings.Contains(bad.Reason, tt.reason) {
				t.Errorf("Verify = %q, want block %d: …%s…", err, tt.height, tt.reason)
			}
		})
	}
}

// An event dated ahead of the ledger's clock — the host's clock stepped back
// between the event and its commit — dates its block, never the other way
// round: the chain stays verifiable, and the block after it is not earlier.
func TestBlockNotBeforeItsEvents(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	mustAppend(t, l, join("a", "a"))
	ahead := ledger.Event{Type: ledger.EventRevoke, Device: "a", Time: e.clock.Now().Add(time.Hour).UnixMilli()}
	ref := mustAppend(t, l, ahead)
	next := mustAppend(t, l, join("b", "b"))
	var times []int64
	if err := l.Blocks(ref.Height, func(b ledger.Block) error { times = append(times, b.Header.Time); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 || times[0] != ahead.Time || times[1] < ahead.Time {
		t.Fatalf("block times %v (blocks %d, %d), want the first at its event's %d and the next not before", times, ref.Height, next.Height, ahead.Time)
	}
	mustVerify(t, l)
}

// sign signs h the way the ledger does: the encoded header bytes.
func sign(t *testing.T, k ecKey, h ledger.Header) []byte {
	t.Helper()
	b, err := wire.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerifyTamperedIndex(t *testing.T) {
	victim := id(2)
	editDevice := func(fn func(*ledger.Device)) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("devices"))
			var d ledger.Device
			if err := wire.Unmarshal(b.Get([]byte(victim)), &d); err != nil {
				return err
			}
			fn(&d)
			v, err := wire.Marshal(d)
			if err != nil {
				return err
			}
			return b.Put([]byte(victim), v)
		}
	}
	tests := []struct {
		name   string
		tamper func(*bolt.Tx) error
		device string // the device the error must name; "" for the head
	}{
		{"status", editDevice(func(d *ledger.Device) { d.Status = membership.Revoked }), victim},
		{"key", editDevice(func(d *ledger.Device) { d.Key = []byte("cose-key:attacker") }), victim},
		{"expiry", editDevice(func(d *ledger.Device) { d.Expires++ }), victim},
		{"deleted", func(tx *bolt.Tx) error { return tx.Bucket([]byte("devices")).Delete([]byte(victim)) }, victim},
		{"added", func(tx *bolt.Tx) error {
			v, _ := wire.Marshal(ledger.Device{ID: "ghost", Key: []byte("k"), Status: membership.Member})
			return tx.Bucket([]byte("devices")).Put([]byte("ghost"), v)
		}, "ghost"},
		{"undecodable", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("devices")).Put([]byte(victim), []byte{0xff})
		}, victim},
		{"meta head", func(tx *bolt.Tx) error {
			m := tx.Bucket([]byte("meta"))
			v := bytes.Clone(m.Get([]byte("head")))
			v[len(v)-1] ^= 1
			return m.Put([]byte("head"), v)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := chainOf5(t)
			tamper(t, e.path, tt.tamper)
			l := e.openReadOnly(t)
			err := l.Verify(t.Context(), nil)
			if !errors.Is(err, ledger.ErrIndexMismatch) {
				t.Fatalf("Verify = %v, want ErrIndexMismatch", err)
			}
			if tt.device != "" && !strings.Contains(err.Error(), `"`+tt.device+`"`) {
				t.Errorf("Verify = %q, does not name %q", err, tt.device)
			}
		})
	}
}

// A writable Open refuses to extend a chain whose head does not match meta;
// a read-only Open still lets Verify say what is wrong.
func TestOpenRefusesDamagedHead(t *testing.T) {
	const head = 5
	tests := []struct {
		name   string
		tamper func(t *testing.T) func(*bolt.Tx) error
	}{
		{"head block byte", func(t *testing.T) func(*bolt.Tx) error {
			return flipIn(t, head, func(b ledger.Block) []byte { return b.Header.Prev[:] })
		}},
		{"head block unreadable", func(t *testing.T) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error { return tx.Bucket([]byte("blocks")).Put(heightKey(head), []byte{0xa0}) }
		}},
		{"head block deleted", func(t *testing.T) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error { return tx.Bucket([]byte("blocks")).Delete(heightKey(head)) }
		}},
		{"block beyond head", func(t *testing.T) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("blocks"))
				return b.Put(heightKey(head+1), bytes.Clone(b.Get(heightKey(head))))
			}
		}},
		{"meta head hash", func(t *testing.T) func(*bolt.Tx) error {
			return func(tx *bolt.Tx) error {
				m := tx.Bucket([]byte("meta"))
				v := bytes.Clone(m.Get([]byte("head")))
				v[len(v)-20] ^= 1 // inside the 32-byte hash
				return m.Put([]byte("head"), v)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := chainOf5(t)
			tamper(t, e.path, tt.tamper(t))
			l, err := ledger.Open(e.path, e.options())
			if !errors.Is(err, ledger.ErrIndexMismatch) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("writable Open = %v, want ErrIndexMismatch", err)
			}
			ro := e.openReadOnly(t)
			if err := ro.Verify(t.Context(), nil); err == nil {
				t.Error("Verify of the damaged ledger passed")
			}
		})
	}
}

// TestJoinEvidence: a join whose evidence does not match the event is
// refused by Append (nothing written); one whose evidence matches but whose
// signature is not the device's — a CH that holds its own key can write it —
// is named by Verify as the first bad block.
func TestJoinEvidence(t *testing.T) {
	other := deviceKey("evidence-other")
	mismatched := map[string]func(ev *ledger.Event){
		"not a COSE_Sign1":    func(ev *ledger.Event) { ev.Request = []byte("cose-sign1") },
		"another device":      func(ev *ledger.Event) { *ev = withEvidence(*ev, testCluster, deviceKey("a")); ev.Device = "b" },
		"another key":         func(ev *ledger.Event) { ev.Key = withEvidence(*ev, testCluster, other).Key },
		"another position":    func(ev *ledger.Event) { ev.Lat++ },
		"another nonce":       func(ev *ledger.Event) { ev.DeviceNonce = []byte("another nonce") },
		"a verify as payload": func(ev *ledger.Event) { ev.Request = mustSign(t, deviceKey("a"), "a", []byte{0xa1, 0x01, 0x61, 'x'}) },
	}
	for name, mod := range mismatched {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			ev := join("a", "a")
			mod(&ev)
			if _, err := l.Append(t.Context(), ev); !errors.Is(err, ledger.ErrInvalidEvent) || !strings.Contains(err.Error(), "evidence") {
				t.Fatalf("Append = %v, want ErrInvalidEvent about the evidence", err)
			}
			if h, _, _ := l.Head(); h.Height != 0 {
				t.Fatalf("height %d after a refused join", h.Height)
			}
		})
	}

	forged := map[string]func() ledger.Event{
		// The request is the device's, but signed by another key.
		"signature": func() ledger.Event {
			ev := join("c", "c")
			signed, err := wire.ParseSign1(ev.Request)
			if err != nil {
				t.Fatal(err)
			}
			ev.Request = mustSign(t, other, "c", signed.Payload)
			return ev
		},
		"cluster": func() ledger.Event { return withEvidence(join("c", "c"), "another-cluster", deviceKey("c")) },
	}
	for name, bad := range forged {
		t.Run("forged "+name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			mustAppend(t, l, join("a", "a"))
			mustAppend(t, l, join("b", "b"))
			mustAppend(t, l, bad())
			mustAppend(t, l, join("d", "d"))
			err := l.Verify(t.Context(), nil)
			var bb *ledger.BadBlockError
			if !errors.As(err, &bb) || bb.Height != 3 || !strings.Contains(bb.Reason, "evidence") {
				t.Fatalf("Verify = %v, want block 3 named for its join evidence", err)
			}
		})
	}
}

func mustSign(t *testing.T, k *ecdsa.PrivateKey, kid string, payload []byte) []byte {
	t.Helper()
	b, err := wire.Sign1(k, []byte(kid), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyJoinFreshnessIsSigned: a join records the height of the echo
// its device signed (Event.FreshAt), and the state machine refuses a rejoin
// signed before the device's leave by it alone; so Verify must hold FreshAt
// to the echo in the signed request, below the join's block. Otherwise a
// CH (or a thief of its key) replays a join its device signed before
// leaving, claiming the leave's height, and the device is a member again
// without asking — Verify and an export's replay passed it. Before this was
// checked, both forged chains below verified.
func TestVerifyJoinFreshnessIsSigned(t *testing.T) {
	for name, forge := range map[string]func(l ledger.Ledger) ledger.Event{
		// The join the device signed at genesis, replayed after its leave
		// (block 2) with FreshAt 2: Append takes it, nothing signed says 2.
		"an old join replayed after a leave": func(l ledger.Ledger) ledger.Event {
			first := allBlocks(t, l)[1].Events[0]
			first.FreshAt = 2
			return first
		},
		// An echo stamped with its own block's height, not yet committed
		// when any echo was made.
		"an echo of an uncommitted height": func(ledger.Ledger) ledger.Event { return signedAt(join("s", "s"), 4) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			mustAppend(t, l, join("r", "r"))
			mustAppend(t, l, leave("r"))
			mustAppend(t, l, signedNow(t, l, join("q", "q"))) // an honest rejoin's freshness verifies
			mustVerify(t, l)
			mustAppend(t, l, forge(l)) // block 4
			err := l.Verify(t.Context(), nil)
			var bb *ledger.BadBlockError
			if !errors.As(err, &bb) || bb.Height != 4 || !strings.Contains(bb.Reason, "echo") {
				t.Fatalf("Verify = %v, want block 4 named for its join's echo", err)
			}
		})
	}
}

// TestVerifyJoinTimeIsSigned: the echo a device signs carries the CH's time
// as well as its height; a join recorded at another time than within the
// echo's lifetime after it — backdated, so that the device looks a member
// before it asked, or postdated — contradicts what the device signed, and
// Verify names its block. Before, only the height was held to the echo.
func TestVerifyJoinTimeIsSigned(t *testing.T) {
	const echoMS = 1_700_000_000_000 // join's time: its echo is of this second
	for name, at := range map[string]int64{
		"backdated a day":      echoMS - 86_400_000,
		"a millisecond before": echoMS - 1,
		"past the lifetime":    echoMS + 61_000,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(t)
			ok := join("r", "r")
			ok.Time = echoMS + 60_999 // the last millisecond an echo of this second is fresh
			mustAppend(t, l, ok)
			mustVerify(t, l)
			ev := join("s", "s")
			ev.Time = at         // the request stays the one signed over the echo of echoMS
			mustAppend(t, l, ev) // block 2
			err := l.Verify(t.Context(), nil)
			var bb *ledger.BadBlockError
			if !errors.As(err, &bb) || bb.Height != 2 || !strings.Contains(bb.Reason, "echo") {
				t.Fatalf("Verify = %v, want block 2 named for its join's time", err)
			}
		})
	}
}
