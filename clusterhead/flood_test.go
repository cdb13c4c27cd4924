package clusterhead_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// heapMiB returns the live heap after a full collection.
func heapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// claimedKey is the key flood joins claim, never the one that signs them.
var claimedKey = sync.OnceValue(func() []byte {
	st, err := device.NewState("claimed")
	if err != nil {
		panic(err)
	}
	pub, err := wire.EncodePublicKey(&st.Key.PublicKey)
	if err != nil {
		panic(err)
	}
	return pub
})

// floodJoin returns join number i of a flood: a fresh identity and nonce,
// claiming claimedKey but signed by key, with echo (nil: none — the cheapest request
// to make, and the one every unauthenticated sender can send).
func floodJoin(t testing.TB, key *device.State, i int, echo []byte) []byte {
	req := wire.JoinRequest{Cluster: chtest.Cluster, ID: fmt.Sprintf("flood-%d", i), Key: claimedKey(),
		Lat: chtest.Near.Lat, Lon: chtest.Near.Lon, Nonce: make([]byte, wire.NonceLen), Echo: echo}
	rand.Read(req.Nonce)
	payload, err := wire.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	if echo == nil {
		// The CH refuses an echo-less join before it looks at the signature,
		// so a flooder need not sign: 64 zero bytes.
		return testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x26}, map[int][]byte{4: []byte(req.ID)}, payload, make([]byte, 64)})
	}
	b, err := wire.Sign1(key.Key, []byte(req.ID), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// floodProtected returns protected request number i of a flood: kid
// "ghost-i", never joined, sealed under made-up keys.
func floodProtected(t testing.TB, i int) []byte {
	var km [32]byte
	rand.Read(km[:])
	keys := protect.DeriveMemberKeys(km)
	b, err := protect.SealRequest(&keys, chtest.Cluster, fmt.Sprintf("ghost-%d", i), 0, protect.PathVerify, []byte{0xa1, 0x01, 0x61, 'x'})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flood sends n requests made by build over conns in parallel and returns
// how many got each code. Bounded: n requests, each bounded by chtest.Timeout.
func flood(t *testing.T, conns []*client.Conn, n, offset int, build func(i int) (string, message.MediaType, []byte)) map[codes.Code]int {
	t.Helper()
	var mu sync.Mutex
	got := map[codes.Code]int{}
	var wg sync.WaitGroup
	for c, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += len(conns) {
				path, cf, body := build(offset + i)
				ctx, cancel := context.WithTimeout(context.Background(), chtest.Timeout)
				resp, err := conn.Post(ctx, path, cf, bytes.NewReader(body))
				cancel()
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				mu.Lock()
				got[resp.Code()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

// Memory under a flood of requests that each carry something new. The CH
// must keep no state per unauthenticated request: echoes are stateless,
// replay windows exist only for members, the member-key cache and the rate
// limiter are LRUs of fixed size. The one per-request cost over UDP is
// go-coap's RFC 7252 deduplication cache, which keeps each response for
// EXCHANGE_LIFETIME (247 s), at most one per (source endpoint, message ID).
const (
	floodWarm = 2_000
	floodN    = 20_000
	// coreAllowanceMiB is what the heap may grow by while the second, 9×
	// larger part of a Core-level flood runs: allocator noise, not state.
	coreAllowanceMiB = 1.0
	// dedupEntryBytes bounds one go-coap deduplication entry (measured
	// about 100 B for a 4.01 answer since go-coap patch 7, 190 B before:
	// the encoded response, its key and expiry).
	dedupEntryBytes = 512
)

// TestFloodCoreStateBounded drives the policy core directly (no CoAP, so
// nothing but our own state is measured) with 20,000 requests, each new:
// echo-less joins with unique IDs, nonces and source addresses; joins with a
// valid echo but a signature by another key; protected requests with unique
// never-joined kids; protected requests naming a real member with fresh
// sequence numbers and bad tags. The heap after all of them is the heap
// after the first 2,000, within coreAllowanceMiB. Admission is open, so that
// the forged joins reach their signature check (an enrolled-only CH refuses
// them before it: not enrolled).
func TestFloodCoreStateBounded(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	m := joinMember(t, ch, "member")
	forger, err := device.NewState("forger")
	if err != nil {
		t.Fatal(err)
	}
	ctx := chtest.Ctx(t)
	send := func(i int) {
		addr := fmt.Sprintf("10.%d.%d.%d:%d", i>>16&0xff, i>>8&0xff, i&0xff, 1024+i%50000)
		switch i % 4 {
		case 0:
			_, err = ch.Core.Join(ctx, floodJoin(t, forger, i, nil), addr)
		case 1: // fresh echo for this source, but signed by the wrong key
			j := floodJoin(t, forger, i, ch.Core.Echo(addr))
			_, err = ch.Core.Join(ctx, j, addr)
			if !errors.Is(err, cluster.ErrBadSignature) {
				t.Fatalf("forged join %d: %v", i, err)
			}
		case 2:
			_, err = ch.Core.Verify(ctx, floodProtected(t, i), addr)
		case 3: // a member's kid and a fresh seq, sealed under the wrong keys
			var km [32]byte
			rand.Read(km[:])
			keys := protect.DeriveMemberKeys(km)
			b, _ := protect.SealRequest(&keys, chtest.Cluster, m.st.ID, uint64(i), protect.PathVerify, []byte{0xa1, 0x01, 0x61, 'x'})
			_, err = ch.Core.Verify(ctx, b, addr)
			if !errors.Is(err, cluster.ErrUnauthorized) {
				t.Fatalf("bad tag %d: %v", i, err)
			}
		}
		if err == nil {
			t.Fatalf("flood request %d accepted", i)
		}
	}
	before := chtest.Snap(t, ch)
	base := heapMiB()
	for i := 0; i < floodWarm; i++ {
		send(i)
	}
	warm := heapMiB()
	for i := floodWarm; i < floodN; i++ {
		send(i)
	}
	end := heapMiB()
	t.Logf("heap: %.2f MiB at start, %.2f after %d requests, %.2f after %d", base, warm, floodWarm, end, floodN)
	if end-warm > coreAllowanceMiB {
		t.Fatalf("heap grew %.2f MiB over %d requests after warm-up: per-request state", end-warm, floodN-floodWarm)
	}
	chtest.Unchanged(t, ch, before)
	// The member was not harmed: its window did not move, its next request
	// works (with a context of its own: the flood may outlast the first).
	if _, err := m.dev.Verify(chtest.Ctx(t), "member"); err != nil {
		t.Fatalf("member after the flood: %v", err)
	}
}

// dialSockets dials n CoAP associations to addr, each from a source port of
// its own.
func dialSockets(t *testing.T, addr string, n int) []*client.Conn {
	t.Helper()
	conns := make([]*client.Conn, n)
	for i := range conns {
		c, err := udp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// TestFloodOverUDPBounded sends the same kind of flood over real UDP from 8
// source ports. Growth is bounded by go-coap's deduplication cache
// (dedupEntryBytes per exchange still within EXCHANGE_LIFETIME), not by
// anything of ours; the figures are logged. (The CH keeps no answer to a
// request that did not authenticate any more: TestUnauthenticatedAnswersNotKept.)
func TestFloodOverUDPBounded(t *testing.T) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.RateLimit = 0 })
	conns := dialSockets(t, ch.Addr(), 8)
	st, err := device.NewState("flood-0")
	if err != nil {
		t.Fatal(err)
	}
	build := func(i int) (string, message.MediaType, []byte) {
		if i%2 == 0 {
			return "/join", message.AppCoseSign1, floodJoin(t, st, i, nil)
		}
		return "/verify", message.AppCoseEncrypt0, floodProtected(t, i)
	}
	before := chtest.Snap(t, ch)
	base := heapMiB()
	codesA := flood(t, conns, floodWarm, 0, build)
	warm := heapMiB()
	codesB := flood(t, conns, floodN-floodWarm, floodWarm, build)
	end := heapMiB()
	perRequest := (end - warm) * (1 << 20) / (floodN - floodWarm)
	t.Logf("heap: %.1f MiB at start, %.1f after %d requests, %.1f after %d (%.0f B per request: go-coap dedup cache); codes %v %v",
		base, warm, floodWarm, end, floodN, perRequest, codesA, codesB)
	if perRequest > dedupEntryBytes {
		t.Fatalf("heap grew %.0f B per request, more than go-coap's deduplication entry (%d B)", perRequest, dedupEntryBytes)
	}
	if codesA[codes.Unauthorized]+codesB[codes.Unauthorized] != floodN {
		t.Fatalf("codes %v %v: want every request refused 4.01", codesA, codesB)
	}
	chtest.Unchanged(t, ch, before)
}
