package client

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/pkg/cache"
	"github.com/stretchr/testify/require"
)

// iotguard patch 7: the answer cache against a plain map of what it should
// hold, through stores, repeated keys, expiry and compaction.
func TestAnswerCacheModel(t *testing.T) {
	const lifetime = 1000
	c := newAnswerCache(lifetime)
	type want struct {
		raw     []byte
		expires int64
	}
	model := map[uint64]want{}
	answer := func(key uint64, now int64) []byte { // of varying sizes
		b := binary.BigEndian.AppendUint64(nil, key)
		b = binary.BigEndian.AppendUint64(b, uint64(now))
		return append(b, make([]byte, key%37)...)
	}
	check := func(now int64) {
		t.Helper()
		for key, w := range model {
			got := c.load(key, now)
			if now > w.expires {
				require.Nil(t, got, "key %d expired at %d, now %d", key, w.expires, now)
				continue
			}
			require.Equal(t, w.raw, got, "key %d at %d", key, now)
		}
	}
	now := int64(0)
	for step := 0; step < 20000; step++ {
		now += int64(step % 3) // time stands still sometimes
		key := uint64(step*7919) % 1500
		raw := answer(key, now)
		c.store(key, raw, now)
		if w, ok := model[key]; !ok || now > w.expires {
			model[key] = want{raw: raw, expires: now + lifetime}
		}
		if step%97 == 0 {
			c.expire(now)
			for k, w := range model {
				if now > w.expires {
					delete(model, k)
				}
			}
			require.Len(t, c.index, len(model))
			require.LessOrEqual(t, c.head, minCompact+len(c.entries)/2, "compaction keeps the expired front bounded")
		}
		if step%501 == 0 {
			check(now)
		}
	}
	check(now)
	c.expire(now + lifetime + 1)
	require.Empty(t, c.index)
	require.Empty(t, c.entries)
	require.Empty(t, c.bytes)
	require.Nil(t, c.load(0, now+lifetime+1))
}

// A loaded answer is a copy: compaction moves the cache's bytes.
func TestAnswerCacheLoadCopies(t *testing.T) {
	c := newAnswerCache(10)
	c.store(1, []byte("first"), 0)
	got := c.load(1, 0)
	for i := uint64(2); i < 2*minCompact+2; i++ {
		c.store(i, bytes.Repeat([]byte{'x'}, 5), 5)
	}
	c.expire(11) // key 1 expires, the front is compacted away
	require.Equal(t, []byte("first"), got)
	require.Nil(t, c.load(1, 11))
	require.Equal(t, []byte("xxxxx"), c.load(2, 11))
}

// The first answer under a key is the one repeated until it expires; a
// later one under the same key replaces it only then.
func TestAnswerCacheFirstAnswerStays(t *testing.T) {
	c := newAnswerCache(10)
	c.store(7, []byte("a"), 0)
	c.store(7, []byte("b"), 10)
	require.Equal(t, []byte("a"), c.load(7, 10))
	c.store(7, []byte("c"), 11)
	require.Equal(t, []byte("c"), c.load(7, 11))
	c.expire(11) // pops "a"'s entry, which no longer owns the key
	require.Equal(t, []byte("c"), c.load(7, 11))
	c.expire(22)
	require.Nil(t, c.load(7, 22))
	require.Empty(t, c.index)
}

// v380Cache holds n answers the way v3.8.0's default cache did: a string
// key, an element with a boxed expiry time and a byte slice per answer.
func v380Cache(n int, raw []byte) *cache.Cache[string, []byte] {
	c := cache.NewCache[string, []byte]()
	for i := 0; i < n; i++ {
		c.LoadOrStore(strconv.Itoa(i)+"/100", cache.NewElement(append([]byte(nil), raw...), time.Now().Add(ExchangeLifetime), nil))
	}
	return c
}

// BenchmarkAnswerCacheExpire is what one periodic check (every 4 s) costs
// a connection holding n answers of which none expired, the common case:
// O(1) now, against v3.8.0's scan of all n in the same run.
func BenchmarkAnswerCacheExpire(b *testing.B) {
	raw := make([]byte, 100)
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d/patched", n), func(b *testing.B) {
			c := newAnswerCache(ExchangeLifetime)
			now := time.Now()
			for i := 0; i < n; i++ {
				c.store(uint64(i), raw, now.UnixNano())
			}
			for b.Loop() {
				c.CheckExpirations(now)
			}
		})
		b.Run(fmt.Sprintf("n=%d/v3.8.0", n), func(b *testing.B) {
			c := v380Cache(n, raw)
			now := time.Now()
			for b.Loop() {
				c.CheckExpirations(now)
			}
		})
	}
}

// BenchmarkAnswerCacheGC is one full GC cycle while 100,000 answers of 100
// bytes are held, and the heap they take. The patched cache's contents hold
// no pointers, so the collector does not mark them; v3.8.0's made four
// objects an answer.
func BenchmarkAnswerCacheGC(b *testing.B) {
	const n = 100_000
	raw := make([]byte, 100)
	for _, v := range []struct {
		name string
		fill func() any
	}{
		{"patched", func() any {
			c := newAnswerCache(ExchangeLifetime)
			now := time.Now().UnixNano()
			for i := 0; i < n; i++ {
				c.store(uint64(i), raw, now)
			}
			return c
		}},
		{"v3.8.0", func() any { return v380Cache(n, raw) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			c := v.fill()
			runtime.GC()
			runtime.ReadMemStats(&after)
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(c)
			b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-B/answer")
		})
	}
}
