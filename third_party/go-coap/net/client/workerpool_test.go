package client

import (
	"context"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/stretchr/testify/require"
)

// iotguard patch 8: a pooled reader against what its connection sees.

type recordingConn struct {
	ctx      context.Context
	mu       sync.Mutex
	got      []int32
	inside   atomic.Int32 // handlers running at once
	most     atomic.Int32
	block    chan struct{} // if set, the message with ID 0 waits on it
	reader   *ReceivedMessageReader[*recordingConn]
	replaced chan struct{}
}

func (c *recordingConn) Done() <-chan struct{} { return c.ctx.Done() }

func (c *recordingConn) ProcessReceivedMessage(req *pool.Message) {
	n := c.inside.Add(1)
	defer c.inside.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	if req.MessageID() == 0 && c.block != nil {
		c.reader.TryToReplaceLoop() // as a handler that waits for a later message does
		close(c.replaced)
		<-c.block
	}
	c.mu.Lock()
	c.got = append(c.got, req.MessageID())
	c.mu.Unlock()
}

func (c *recordingConn) ids() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int32(nil), c.got...)
}

func msgWithID(t *testing.T, id int32) *pool.Message {
	t.Helper()
	m := pool.NewMessage(t.Context())
	m.SetMessageID(id)
	return m
}

// A pooled reader serves its messages in order, one at a time, and its drain
// ends once they are served.
func TestPooledReaderInOrderOneAtATime(t *testing.T) {
	workers := NewWorkerPool(20 * time.Millisecond)
	var conns []*recordingConn
	for range 8 {
		c := &recordingConn{ctx: t.Context()}
		c.reader = NewPooledReceivedMessageReader(c, 16, workers)
		conns = append(conns, c)
	}
	want := make([]int32, 0, 500)
	for id := range int32(500) {
		want = append(want, id)
		for _, c := range conns {
			require.True(t, c.reader.Push(msgWithID(t, id), true))
		}
	}
	for _, c := range conns {
		require.Eventually(t, func() bool { return len(c.ids()) == len(want) }, 5*time.Second, time.Millisecond)
		require.Equal(t, want, c.ids())
		require.Equal(t, int32(1), c.most.Load(), "one message of a connection at a time")
		require.Eventually(t, func() bool { return !c.reader.scheduled.Load() }, 5*time.Second, time.Millisecond, "the drain ends")
	}
}

// A full queue refuses a message without waiting; a done connection is not
// served.
func TestPooledReaderFullAndDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	c := &recordingConn{ctx: ctx, block: make(chan struct{}), replaced: make(chan struct{})}
	c.reader = NewPooledReceivedMessageReader(c, 1, NewWorkerPool(20*time.Millisecond))
	// Message 0 blocks its handler (and starts a second drain); the
	// second drain takes message 1 and returns, and then the queue fills.
	require.True(t, c.reader.Push(msgWithID(t, 0), false))
	<-c.replaced
	require.True(t, c.reader.Push(msgWithID(t, 1), false))
	require.Eventually(t, func() bool { return len(c.ids()) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []int32{1}, c.ids(), "a later message is served while the first waits")
	cancel()
	close(c.block)
	require.Eventually(t, func() bool { return len(c.ids()) == 2 }, 5*time.Second, time.Millisecond)
	require.True(t, c.reader.Push(msgWithID(t, 2), false))
	require.False(t, c.reader.Push(msgWithID(t, 3), false), "the queue holds one")
	require.False(t, c.reader.Push(msgWithID(t, 4), true), "a done connection refuses")
	runtime.Gosched()
	require.Equal(t, []int32{1, 0}, c.ids(), "nothing is served after done")
}

// The pool reuses an idle goroutine and ends it after idle.
func TestWorkerPoolReusesAndEnds(t *testing.T) {
	require.Eventually(t, func() bool { return workers() == 0 }, 5*time.Second, 10*time.Millisecond, "other tests' workers end")
	p := NewWorkerPool(50 * time.Millisecond)
	done := make(chan struct{})
	most := 0
	for range 100 {
		p.Go(func() {
			most = max(most, workers())
			done <- struct{}{}
		})
		<-done
		time.Sleep(time.Millisecond) // the worker is back waiting
	}
	require.Equal(t, 1, most, "one goroutine serves work that comes one at a time")
	require.Eventually(t, func() bool { return workers() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// workers counts the goroutines of every WorkerPool.
func workers() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "(*WorkerPool).worker(")
}
