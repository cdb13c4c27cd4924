package client

import (
	"sync"

	"github.com/plgd-dev/go-coap/v3/message/pool"
	"go.uber.org/atomic"
)

type ReceivedMessageReaderClient interface {
	Done() <-chan struct{}
	ProcessReceivedMessage(req *pool.Message)
}

type ReceivedMessageReader[C ReceivedMessageReaderClient] struct {
	queue chan *pool.Message
	cc    C

	// workers, if set, serve the queue in drains instead of a goroutine
	// of the reader's own (iotguard patch 8, see workerpool.go): scheduled
	// says a drain is queued or running, and generation ends a drain that
	// TryToReplaceLoop replaced.
	workers    *WorkerPool
	scheduled  atomic.Bool
	generation atomic.Uint64

	private struct {
		mutex           sync.Mutex
		loopDone        chan struct{}
		readingMessages *atomic.Bool
	}
}

// NewReceivedMessageReader creates a new ReceivedMessageReader[C] instance.
func NewReceivedMessageReader[C ReceivedMessageReaderClient](cc C, queueSize int) *ReceivedMessageReader[C] {
	r := ReceivedMessageReader[C]{
		queue: make(chan *pool.Message, queueSize),
		cc:    cc,
		private: struct {
			mutex           sync.Mutex
			loopDone        chan struct{}
			readingMessages *atomic.Bool
		}{
			loopDone:        make(chan struct{}),
			readingMessages: atomic.NewBool(true),
		},
	}

	go r.loop(r.private.loopDone, r.private.readingMessages)
	return &r
}

// NewPooledReceivedMessageReader is NewReceivedMessageReader without a
// goroutine of its own: the queue is drained on workers whenever a message
// is pushed with Push (iotguard patch 8). An idle connection then holds no
// goroutine, and one that gets a message reuses a worker's grown stack.
func NewPooledReceivedMessageReader[C ReceivedMessageReaderClient](cc C, queueSize int, workers *WorkerPool) *ReceivedMessageReader[C] {
	return &ReceivedMessageReader[C]{queue: make(chan *pool.Message, queueSize), cc: cc, workers: workers}
}

// Push queues req, waiting for a place if wait, and reports whether it was
// queued (false: the queue was full and wait false, or cc is done).
func (r *ReceivedMessageReader[C]) Push(req *pool.Message, wait bool) bool {
	if wait {
		select {
		case r.queue <- req:
		case <-r.cc.Done():
			return false
		}
	} else {
		select {
		case r.queue <- req:
		default:
			return false
		}
	}
	if r.workers != nil && r.scheduled.CompareAndSwap(false, true) {
		gen := r.generation.Load()
		r.workers.Go(func() { r.drain(gen) })
	}
	return true
}

// drain serves the queue until it is empty, cc is done, or
// TryToReplaceLoop started another drain while this one was in a handler.
func (r *ReceivedMessageReader[C]) drain(gen uint64) {
	for r.generation.Load() == gen {
		select {
		case <-r.cc.Done(): // before the queue: a done connection serves nothing more
			return
		default:
		}
		select {
		case req := <-r.queue:
			r.cc.ProcessReceivedMessage(req)
			continue
		default:
		}
		r.scheduled.Store(false)
		// A message pushed after the empty check and before the Store found
		// scheduled true and started no drain: this one goes on.
		if len(r.queue) == 0 || !r.scheduled.CompareAndSwap(false, true) {
			return
		}
	}
}

// C returns the channel to push received messages to.
func (r *ReceivedMessageReader[C]) C() chan<- *pool.Message {
	return r.queue
}

// The loop function continuously listens to messages. IT can be replaced with a new one by calling the TryToReplaceLoop function,
// ensuring that only one loop is reading from the queue at a time.
// The loopDone channel is used to signal when the loop should be closed.
// The readingMessages variable is used to indicate if the loop is currently reading from the queue.
// When the loop is not reading from the queue, it sets readingMessages to false, and when it starts reading again, it sets it to true.
// If the client is closed, the loop also closes.
func (r *ReceivedMessageReader[C]) loop(loopDone chan struct{}, readingMessages *atomic.Bool) {
	for {
		select {
		// if the loop is replaced, the old loop will be closed
		case <-loopDone:
			return
		// process received message until the queue is empty
		case req := <-r.queue:
			// This signalizes that the loop is not reading messages.
			readingMessages.Store(false)
			r.cc.ProcessReceivedMessage(req)
			// This signalizes that the loop is reading messages. We call mutex because we want to ensure that TryToReplaceLoop has ended and
			// loopDone is closed if it was replaced.
			r.private.mutex.Lock()
			readingMessages.Store(true)
			r.private.mutex.Unlock()
		// if the client is closed, the loop will be closed
		case <-r.cc.Done():
			return
		}
	}
}

// TryToReplaceLoop function attempts to replace the loop with a new one,
// but only if the loop is not currently reading messages. If the loop is reading messages,
// the function returns immediately. If the loop is not reading messages, the current loop is closed,
// and new loopDone and readingMessages channels and variables are created.
func (r *ReceivedMessageReader[C]) TryToReplaceLoop() {
	if r.workers != nil {
		// The current drain is in a handler that waits for a message
		// behind it in the queue: a new drain serves the queue, and the
		// current one ends when its handler returns.
		gen := r.generation.Add(1)
		r.scheduled.Store(true)
		r.workers.Go(func() { r.drain(gen) })
		return
	}
	r.private.mutex.Lock()
	if r.private.readingMessages.Load() {
		r.private.mutex.Unlock()
		return
	}
	defer r.private.mutex.Unlock()
	close(r.private.loopDone)
	loopDone := make(chan struct{})
	readingMessages := atomic.NewBool(true)
	r.private.loopDone = loopDone
	r.private.readingMessages = readingMessages
	go r.loop(loopDone, readingMessages)
}
