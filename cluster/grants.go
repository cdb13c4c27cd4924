package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// GrantLog is what the core needs of the CH's grant log (ledger/grants.go);
// *ledger.GrantLog implements it.
type GrantLog interface {
	Write(records [][]byte, now time.Time) (ledger.GrantBatch, error)
	Committed(seq, height uint64) error
}

// Defaults of the session grant batches (Config.GrantBatch, GrantPeriod).
const (
	DefaultGrantBatch  = 4096
	DefaultGrantPeriod = time.Second
)

// maxSealedBatches bounds the full batches waiting for the grant log and the
// ledger. When that many wait, the next record that fills a batch waits for a
// place: back-pressure, never a dropped record. With the open batch, the
// batcher holds at most (maxSealedBatches+1) × GrantBatch records (~80 B
// each).
const maxSealedBatches = 4

// errGrantsClosed is returned for an audit record after the batcher stopped.
var errGrantsClosed = errors.New("grant log closed")

// grantBatcher collects the audit records — session grants and warning
// verdicts — and commits them in batches: each batch written whole to the
// grant log (durable), then its session-batch event appended to the ledger,
// then marked committed. One goroutine writes, so batches are numbered in
// the order they are written. Audit records are not membership: no later
// decision reads them, so their answers do not wait for a durable commit
// and /verify and /session cost AEAD only (docs/PROTOCOL.md §4.4); join,
// leave and revoke stay durable before their answers.
//
// Invariants: a record added before Flush returns is in the grant log and
// its batch's event on the ledger (or, if the ledger refused the append,
// pending in the grant log, appended again at the next commit or start:
// ledger.RecoverGrants; or, if the grant log refused the batch, held and
// written again at the next commit, while add refuses new records). A crash
// loses the open batch — at most GrantBatch records, at most GrantPeriod
// old — and nothing written.
type grantBatcher struct {
	log     GrantLog
	append  func(context.Context, ledger.Event) (ledger.BlockRef, error) // Core.append: timed for the metrics
	cluster string
	logger  *slog.Logger
	now     func() time.Time
	max     int
	period  time.Duration

	mu      sync.Mutex
	open    [][]byte // encoded records of the open batch
	closed  bool     // set once the writer is stopping: add fails
	failing bool     // set while the grant log refuses writes: add fails (fail closed)

	sealed   chan [][]byte
	flushReq chan chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	// Only the writer goroutine touches these.
	unwritten [][][]byte          // batches the grant log refused, tried again at each commit
	retry     []ledger.GrantBatch // written, not yet on the ledger
}

func newGrantBatcher(cfg Config, appendFn func(context.Context, ledger.Event) (ledger.BlockRef, error)) *grantBatcher {
	b := &grantBatcher{log: cfg.Grants, append: appendFn, cluster: cfg.ID, logger: cfg.Logger, now: cfg.Now,
		max: cfg.GrantBatch, period: cfg.GrantPeriod,
		sealed: make(chan [][]byte, maxSealedBatches), flushReq: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// add records ev, a session or verify-warning event, in the open batch.
func (b *grantBatcher) add(ev ledger.Event) error {
	rec, err := wire.Marshal(ev)
	if err != nil {
		return fmt.Errorf("failed to encode %s record of %s: %w", ev.Type, ev.Device, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errGrantsClosed
	}
	if b.failing {
		b.mu.Unlock()
		return refuse(ErrBusy, "audit log unavailable")
	}
	b.open = append(b.open, rec)
	var full [][]byte
	if len(b.open) >= b.max {
		full, b.open = b.open, nil
	}
	b.mu.Unlock()
	if full == nil {
		return nil
	}
	select {
	case b.sealed <- full:
		return nil
	case <-b.done:
		b.logger.Error("audit records not recorded: grant log closed", "records", len(full))
		return errGrantsClosed
	}
}

// take empties the open batch and returns it.
func (b *grantBatcher) take() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	recs := b.open
	b.open = nil
	return recs
}

func (b *grantBatcher) run() {
	defer close(b.done)
	t := time.NewTicker(b.period)
	defer t.Stop()
	for {
		select {
		case recs := <-b.sealed:
			b.commit(recs)
		case <-t.C:
			b.commit(b.take())
		case ack := <-b.flushReq:
			b.drain()
			close(ack)
		case <-b.stop:
			b.mu.Lock()
			b.closed = true
			b.mu.Unlock()
			b.drain()
			for _, recs := range b.unwritten {
				b.logger.Error("audit records lost at shutdown: the grant log refused them", "records", len(recs))
			}
			return
		}
	}
}

// drain commits the sealed batches and the open one.
func (b *grantBatcher) drain() {
	for {
		select {
		case recs := <-b.sealed:
			b.commit(recs)
		default:
			b.commit(b.take())
			return
		}
	}
}

// commit writes recs as a batch (if any), after the batches the grant log
// refused before, and appends the events of the batches not yet on the
// ledger. While the grant log refuses a batch, add refuses new records:
// the records already answered wait in memory, bounded by the batches that
// were sealed or open when it began, and none is dropped.
func (b *grantBatcher) commit(recs [][]byte) {
	if len(recs) > 0 {
		b.unwritten = append(b.unwritten, recs)
	}
	for len(b.unwritten) > 0 {
		batch, err := b.log.Write(b.unwritten[0], b.now())
		if err != nil {
			if !b.setFailing(true) {
				b.logger.Error("audit records not written: refusing new grants and warnings until the grant log takes them",
					"records", len(b.unwritten[0]), "err", err)
			}
			break
		}
		b.unwritten = b.unwritten[1:]
		b.retry = append(b.retry, batch)
	}
	if len(b.unwritten) == 0 && b.setFailing(false) {
		b.logger.Info("grant log written again: grants and warnings served")
	}
	for len(b.retry) > 0 {
		batch := b.retry[0]
		ref, err := b.append(context.Background(), batch.EventAt(b.cluster, b.now()))
		if err != nil {
			// Kept in the grant log as pending: tried again at the next
			// commit, and at the next start.
			b.logger.Warn("session batch not on the ledger yet", "batch", batch.Seq, "records", batch.Count, "err", err)
			return
		}
		if err := b.log.Committed(batch.Seq, ref.Height); err != nil {
			b.logger.Warn("session batch committed but not marked (done at the next start)", "batch", batch.Seq, "err", err)
		}
		b.retry = b.retry[1:]
	}
}

// setFailing sets whether add refuses records, and returns what it was.
func (b *grantBatcher) setFailing(failing bool) (was bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	was, b.failing = b.failing, failing
	return was
}

// flush returns once every record added before it is committed.
func (b *grantBatcher) flush() {
	ack := make(chan struct{})
	select {
	case b.flushReq <- ack:
		<-ack
	case <-b.done:
	}
}

// close commits what is open and stops the writer.
func (b *grantBatcher) close() {
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.done
}

// Flush returns once every audit record added before it — session grants,
// warning verdicts — is in the grant log and its batch's event on the
// ledger (or pending in the grant log, see grantBatcher).
func (c *Core) Flush() { c.grants.flush() }

// Close commits the open batch of audit records and stops their writer; a
// grant or warning after Close fails. The CH calls it after its CoAP server
// stopped and before its ledger and grant log close.
func (c *Core) Close() { c.grants.close() }
