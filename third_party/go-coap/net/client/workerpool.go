package client

import "time"

// WorkerPool runs functions on goroutines it keeps for a while after each,
// so that many connections share a few goroutines instead of holding one
// each (iotguard patch 8, third_party/README.md). A goroutine is started
// whenever no idle one takes the function at once: a pool never makes a
// function wait for another, so it bounds nothing; it saves the goroutine
// and the stack growth of every new connection, and idle connections hold
// none.
type WorkerPool struct {
	work chan func()
	idle time.Duration
}

// NewWorkerPool returns a pool whose goroutines end after idle without work.
func NewWorkerPool(idle time.Duration) *WorkerPool {
	return &WorkerPool{work: make(chan func()), idle: idle}
}

// Go runs f on an idle goroutine of the pool, or on a new one.
func (p *WorkerPool) Go(f func()) {
	select {
	case p.work <- f:
	default:
		go p.worker(f)
	}
}

func (p *WorkerPool) worker(f func()) {
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(p.idle)
		select {
		case f = <-p.work:
		case <-idle.C:
			return
		}
	}
}
