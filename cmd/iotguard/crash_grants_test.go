package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/clitest"
	"github.com/iotguard/iotguard/ledger"
)

// grantSlack bounds how long after its answer a grant's batch may still be
// open when the server is killed: the batch period (1 s) and a generous
// margin for a loaded machine. A grant answered longer than this before a
// kill must have survived it.
const grantSlack = 5 * time.Second

// grantAck is a session grant the server answered.
type grantAck struct {
	sid   string
	at    time.Time
	round int
}

// TestCrashSessionGrants kills 'iotguard serve' with SIGKILL while two
// members ask for sessions, three times on the same data directory, and
// checks after every kill that 'ledger verify' passes, grant log included
// (a batch the kill caught between the grant log and the ledger is reported
// pending, and appended at the next start).
// At the end, after a clean run: every recorded grant is one the server
// answered (or had in flight), and every answered grant that is missing was
// answered less than grantSlack before a kill — the open batch is all a
// crash loses (docs/SECURITY.md).
func TestCrashSessionGrants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a server 4 times")
	}
	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)

	var (
		mu    sync.Mutex
		acks  []grantAck
		kills []time.Time
	)
	states := map[string]*device.State{}
	for _, id := range []string{"grant-a", "grant-b"} {
		st, err := device.NewState(id)
		if err != nil {
			t.Fatal(err)
		}
		states[id] = st
	}
	const rounds = 3
	for round := 1; round <= rounds+1; round++ {
		srv := startServe(t, addr, data)
		if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		devs := map[string]*device.Device{}
		for id, st := range states {
			d, err := device.Dial(addr, st)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if round == 1 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := d.Join(ctx, 48_856_600, 2_352_200)
				cancel()
				if err != nil {
					t.Fatalf("join %s: %v", id, err)
				}
			}
			devs[id] = d
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for id, peer := range map[string]string{"grant-a": "grant-b", "grant-b": "grant-a"} {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					s, _, err := devs[id].Session(ctx, peer)
					cancel()
					if err != nil {
						select {
						case <-stop: // the kill
							return
						default:
						}
						continue // in flight at the restart's echo round, or a timeout: not answered
					}
					mu.Lock()
					acks = append(acks, grantAck{sid: string(s.SID), at: time.Now(), round: round})
					mu.Unlock()
				}
			})
		}
		// Wait, bounded, for 20 grants of this round, then kill at a random
		// moment within the next 1.5 s (or, in the last round, stop cleanly).
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			n := 0
			for _, a := range acks {
				if a.round == round {
					n++
				}
			}
			mu.Unlock()
			if n >= 20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d grants in 20 s", round, n)
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		if round <= rounds {
			mu.Lock()
			kills = append(kills, time.Now())
			mu.Unlock()
			srv.kill(t)
			close(stop)
			wg.Wait()
			out := mustRun(t, 0, "ledger", "verify", "--data", data)
			if !strings.Contains(out, "audit records intact") && !strings.Contains(out, "no grant log") {
				t.Fatalf("round %d: ledger verify: %s", round, out)
			}
			t.Logf("round %d: killed; %s", round, strings.TrimSpace(out))
			continue
		}
		close(stop)
		wg.Wait()
		srv.stop(t) // a clean stop commits the open batch
	}
	out := mustRun(t, 0, "ledger", "verify", "--data", data)
	if !strings.Contains(out, "audit records intact") || strings.Contains(out, "pending") {
		t.Fatalf("ledger verify after a clean stop (every pending batch appended at a restart): %s", out)
	}

	l, err := clusterhead.OpenLedger(data)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g, err := clusterhead.OpenGrantLog(data)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	recorded := map[string]bool{}
	err = g.Batches(func(b ledger.GrantBatch) error {
		evs, err := g.Events(b.Seq)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if recorded[string(ev.SessionID)] {
				return fmt.Errorf("session %x recorded twice", ev.SessionID)
			}
			recorded[string(ev.SessionID)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	lost := 0
	for _, a := range acks {
		answered[a.sid] = true
		if recorded[a.sid] {
			continue
		}
		lost++
		if a.round > rounds {
			t.Errorf("session %x answered in the clean last round, not recorded", a.sid)
			continue
		}
		if kill := kills[a.round-1]; kill.Sub(a.at) > grantSlack {
			t.Errorf("session %x answered %v before the kill of round %d, not recorded", a.sid, kill.Sub(a.at), a.round)
		}
	}
	extra := 0
	for sid := range recorded {
		if !answered[sid] {
			extra++ // granted, its answer lost to a kill or to the client's timeout
		}
	}
	t.Logf("%d grants answered, %d recorded, %d lost at %d kills (the open batches), %d recorded but unanswered",
		len(acks), len(recorded), lost, rounds, extra)
}
