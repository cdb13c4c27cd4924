package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/wire"
)

// runPrefix returns a device ID prefix unique to this run, so that runs
// against one server never collide.
func runPrefix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
}

// probe reads what the bench needs of an external cluster head at addr:
// its signed cluster info and the admission it announces.
func probe(addr string, timeout time.Duration) (*wire.ClusterInfo, string, error) {
	p, err := device.DialPublic(addr, nil)
	if err != nil {
		return nil, "", err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	info, _, err := p.ClusterKey(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("failed to reach cluster head %s: %w", addr, err)
	}
	admission, err := p.Admission(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("failed to read the admission of %s: %w", addr, err)
	}
	return info, admission, nil
}

// member is a joined device used by one worker. It moves to a new source
// port every midBudget requests.
type member struct {
	addr string
	st   *device.State
	d    *device.Device
	used int
}

func (m *member) device() (*device.Device, error) {
	if m.used++; m.used > midBudget {
		m.d.Close()
		d, err := device.Dial(m.addr, m.st)
		if err != nil {
			return nil, err
		}
		m.d, m.used = d, 1
	}
	return m.d, nil
}

func (m *member) close() {
	if m.d != nil {
		m.d.Close()
	}
}

// keyPool hands out fresh device identities, generated before the measured
// phase so that key generation does not compete with the cluster head for
// the CPU; when it runs dry, identities are generated on the spot. With a
// fleet key, each identity carries a credential of it.
type keyPool struct {
	prefix string
	fleet  *ecdsa.PrivateKey
	states []*device.State
	next   atomic.Int64
}

func (p *keyPool) get() (*device.State, error) {
	i := p.next.Add(1) - 1
	if i < int64(len(p.states)) {
		st := p.states[i]
		p.states[i] = nil
		return st, nil
	}
	return p.identity(i)
}

// identity makes identity number i.
func (p *keyPool) identity(i int64) (*device.State, error) {
	st, err := device.NewState(fmt.Sprintf("%s-%d", p.prefix, i))
	if err != nil || p.fleet == nil {
		return st, err
	}
	return st, credential(p.fleet, st)
}

// newKeyPool generates n identities on all cores.
func newKeyPool(prefix string, n int, fleet *ecdsa.PrivateKey, progress Progress) (*keyPool, error) {
	p := &keyPool{prefix: prefix, fleet: fleet, states: make([]*device.State, n)}
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	progress.Start("generating device keys", int64(n))
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				st, err := p.identity(i)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				p.states[i] = st
				done.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				progress.Set(done.Load())
			}
		}
	}()
	wg.Wait()
	close(stop)
	progress.Finish()
	return p, firstErr
}

// scenario is a set-up scenario: its members and the workers built on them.
type scenario struct {
	t       *target
	members []*member
	talks   []*talk
	keys    *keyPool
	peers   func(r *mrand.Rand) string // a member to name in /verify and /session
	stop    []func()
}

func (s *scenario) close() {
	for _, m := range s.members {
		m.close()
	}
	for _, t := range s.talks {
		t.close()
	}
	for _, f := range s.stop {
		f()
	}
}

// talk is an M1 → M2 conversation for the m2m scenario; it talks again
// (new association, new session) every midBudget messages.
type talk struct {
	m1, m2 *member
	l      *device.Listener
	t      *device.Talk
	used   int
}

func (k *talk) open(ctx context.Context) error {
	if k.t != nil {
		k.t.Close()
	}
	t, err := k.m1.d.Talk(ctx, k.l.Addr().String(), k.m2.st.ID)
	if err != nil {
		return fmt.Errorf("failed to start talk %s → %s: %w", k.m1.st.ID, k.m2.st.ID, err)
	}
	k.t, k.used = t, 0
	return nil
}

func (k *talk) send(ctx context.Context, msg []byte) error {
	if k.used++; k.used > midBudget {
		if err := k.open(ctx); err != nil {
			return err
		}
		k.used = 1
	}
	_, err := k.t.Send(ctx, msg)
	return err
}

func (k *talk) close() {
	if k.t != nil {
		k.t.Close()
	}
	if k.l != nil {
		k.l.Close()
	}
}

// joinMembers joins n devices named prefix-m-NNNN, n at a time, each on its
// own association.
func joinMembers(ctx context.Context, cfg Config, t *target, n int) ([]*member, error) {
	ms := make([]*member, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, min(n, 64))
	progress := cfg.progress()
	progress.Start("joining members", int64(n))
	var done atomic.Int64
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := device.NewState(fmt.Sprintf("%s-m-%04d", t.prefix, i))
			if err == nil && t.fleet != nil {
				err = credential(t.fleet, st)
			}
			if err != nil {
				errs <- err
				return
			}
			d, err := device.Dial(t.addr, st, device.WithoutLogCheck())
			if err != nil {
				errs <- err
				return
			}
			ms[i] = &member{addr: t.addr, st: st, d: d}
			jctx, cancel := context.WithTimeout(ctx, 4*cfg.Timeout)
			defer cancel()
			if _, err := d.Join(jctx, t.lat, t.lon); err != nil {
				errs <- fmt.Errorf("failed to join %s: %w", st.ID, err)
				return
			}
			progress.Set(done.Add(1))
		}()
	}
	wg.Wait()
	progress.Finish()
	close(errs)
	if err := <-errs; err != nil {
		for _, m := range ms {
			if m != nil {
				m.close()
			}
		}
		return nil, err
	}
	return ms, nil
}

// setup prepares cfg.Scenario against t: members joined, talks open, keys
// generated. Nothing of it is measured.
func setup(ctx context.Context, cfg Config, t *target) (*scenario, error) {
	s := &scenario{t: t}
	c := cfg.Concurrency
	var err error
	switch cfg.Scenario {
	case ScenarioJoin:
		n := int(min(cfg.Count, int64(joinEstimate*cfg.Duration.Seconds())+1000))
		if cfg.HalfLoad {
			n += n / 2
		}
		var fleet *ecdsa.PrivateKey
		if t.admission == AdmitFleet {
			fleet = t.fleet
		}
		cfg.logf("setup: %d device keys (admission %s)", n, t.admission)
		if s.keys, err = newKeyPool(t.prefix+"-j", n, fleet, cfg.progress()); err != nil {
			return nil, err
		}
		if t.admission == AdmitEnrolled && t.ch != nil {
			cfg.logf("setup: %d enrollments", n)
			err = enrollAll(ctx, t, s.keys)
		}
		return s, err
	case ScenarioVerify, ScenarioSession:
		// One member per worker plus one, so every session names another member.
		cfg.logf("setup: %d members join", c+1)
		if s.members, err = joinMembers(ctx, cfg, t, c+1); err != nil {
			return nil, err
		}
		s.peers = func(r *mrand.Rand) string { return s.members[r.IntN(len(s.members))].st.ID }
		return s, nil
	case ScenarioM2M, ScenarioMixed:
		cfg.logf("setup: %d members join, %d talks", 2*c, c)
		if s.members, err = joinMembers(ctx, cfg, t, 2*c); err != nil {
			return nil, err
		}
		s.peers = func(r *mrand.Rand) string { return s.members[r.IntN(len(s.members))].st.ID }
		for i := range c {
			m1, m2 := s.members[i], s.members[c+i]
			k := &talk{m1: m1, m2: m2}
			// Every peer of the bench sends from 127.0.0.1: the listener's
			// per-source limit is off, as the bench's cluster head's is.
			if k.l, err = m2.d.Listen("127.0.0.1:0", func(string, []byte) []byte { return nil }, nil, device.WithListenRateLimit(0)); err != nil {
				s.close()
				return nil, err
			}
			s.talks = append(s.talks, k)
			tctx, cancel := context.WithTimeout(ctx, 4*cfg.Timeout)
			err := k.open(tctx)
			cancel()
			if err != nil {
				s.close()
				return nil, err
			}
		}
		if cfg.Scenario == ScenarioMixed {
			s.keys = &keyPool{prefix: t.prefix + "-x", fleet: t.fleet}
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrScenario, cfg.Scenario)
}

// joinEstimate is a generous guess of joins per second, to size the key
// pool of a join run.
const joinEstimate = 4000

// mixed scenario weights, in percent: what one op does.
const (
	mixJoin    = 5
	mixVerify  = 60
	mixSession = 20 // the rest is m2m
)

// workers builds one worker per concurrency slot for scenario name.
func (s *scenario) workers(cfg Config, name string) []worker {
	ws := make([]worker, cfg.Concurrency)
	msg := make([]byte, m2mMessage)
	for i := range ws {
		r := mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		join := func(ctx context.Context) error {
			st, err := s.keys.get()
			if err != nil {
				return err
			}
			d, err := device.Dial(s.t.addr, st, device.WithoutLogCheck())
			if err != nil {
				return err
			}
			defer d.Close()
			_, err = d.Join(ctx, s.t.lat, s.t.lon)
			return err
		}
		var m *member
		if i < len(s.members) {
			m = s.members[i]
		}
		verify := func(ctx context.Context) error {
			d, err := m.device()
			if err != nil {
				return err
			}
			_, err = d.Verify(ctx, s.peers(r))
			return err
		}
		session := func(ctx context.Context) error {
			d, err := m.device()
			if err != nil {
				return err
			}
			peer := s.peers(r)
			for peer == m.st.ID {
				peer = s.peers(r)
			}
			_, _, err = d.Session(ctx, peer)
			return err
		}
		var k *talk
		if i < len(s.talks) {
			k = s.talks[i]
		}
		m2m := func(ctx context.Context) error { return k.send(ctx, msg) }
		switch name {
		case ScenarioJoin:
			ws[i].op = join
		case ScenarioVerify:
			ws[i].op = verify
		case ScenarioSession:
			ws[i].op = session
		case ScenarioM2M:
			ws[i].op = m2m
		case ScenarioMixed:
			ws[i].op = func(ctx context.Context) error {
				switch x := r.IntN(100); {
				case x < mixJoin:
					return join(ctx)
				case x < mixJoin+mixVerify:
					return verify(ctx)
				case x < mixJoin+mixVerify+mixSession:
					return session(ctx)
				}
				return m2m(ctx)
			}
		}
	}
	return ws
}

// run runs one measured phase of scenario base at rate, showing name.
func (s *scenario) run(cfg Config, base, name string, rate float64) outcome {
	cfg.logf("run: %s, %d devices, up to %v or %d ops", name, cfg.Concurrency, cfg.Duration, cfg.Count)
	return load{name: name, duration: cfg.Duration, count: cfg.Count, rate: rate, timeout: cfg.Timeout, progress: cfg.progress()}.run(s.workers(cfg, base))
}
