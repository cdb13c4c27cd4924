package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/clitest"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// Crash consistency: 'iotguard serve' runs as a separate process and is
// killed with SIGKILL at a random moment while several goroutines join
// devices, several times over, on the same data directory.

const (
	crashRounds  = 5
	crashWorkers = 6                      // 4 device-library joiners, 2 raw joiners that replay
	crashJitter  = 500 * time.Millisecond // the kill comes this long at most after the round's first acknowledged join
	crashJoinTTL = 3 * time.Second        // bound on one join attempt
	crashCluster = "tamper-test"          // what startServe configures
)

// ack is a join the server acknowledged (2.01 or 2.04) and what it said.
type ack struct {
	id          string
	deviceNonce []byte
	height      uint64
	hash        []byte
	round       int
}

// crashLog collects acknowledgements and the raw joins to replay later.
type crashLog struct {
	mu       sync.Mutex
	acks     []ack
	captured [][]byte // signed joins (with their echo) that were acknowledged
	unknown  int      // attempts that got no answer: in flight at the kill
	replayed int      // captured joins replayed to a later process, all refused
}

func (c *crashLog) ack(a ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acks = append(c.acks, a)
}

// waitRound waits, bounded, until a join of round has been acknowledged.
func (c *crashLog) waitRound(round int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		n := len(c.acks)
		last := 0
		if n > 0 {
			last = c.acks[n-1].round
		}
		c.mu.Unlock()
		if last == round {
			return true
		}
	}
	return false
}

// TestCrashConsistency kills the server with SIGKILL at a random point of a
// concurrent join load, crashRounds times, restarting it on the same data
// directory, and checks after every kill that 'ledger verify' passes, and at
// the end that every join acknowledged with 2.01/2.04 is in the ledger with
// the block and nonces it was acknowledged with, that no join appears twice
// (replays within a process get 2.04, replays after a restart get an echo
// challenge), and that 'ledger verify' still passes.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a server 6 times")
	}
	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	var log crashLog

	for round := 1; round <= crashRounds; round++ {
		srv := startServe(t, addr, data)
		if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		// Joins captured before this process started: stale echoes now, so
		// each must get 4.01 with a new Echo and change nothing.
		replayCaptured(t, addr, &log)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range crashWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("crash-r%d-w%d-%d", round, w, k)
					if w < 4 {
						libraryJoin(t, addr, id, round, &log)
					} else {
						rawJoin(t, addr, id, round, &log)
					}
				}
			}()
		}
		// Kill at a random moment once the load is running (one join of
		// this round acknowledged), so every round has something to lose.
		if !log.waitRound(round, 15*time.Second) {
			t.Fatalf("round %d: no join acknowledged within 15 s", round)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(crashJitter))))
		srv.kill(t)
		close(stop)
		wg.Wait() // bounded: each attempt is bounded by crashJoinTTL
		if t.Failed() {
			t.FailNow()
		}
		out := mustRun(t, 0, "ledger", "verify", "--data", data)
		t.Logf("round %d: killed; %d joins acknowledged so far, %d in flight at kills; %s", round, len(log.acks), log.unknown, strings.TrimSpace(out))
	}

	// A last clean run: replay everything once more, then stop.
	srv := startServe(t, addr, data)
	if err := clitest.WaitCoAP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	replayCaptured(t, addr, &log)
	srv.stop(t)
	mustRun(t, 0, "ledger", "verify", "--data", data)

	l, err := clusterhead.OpenLedger(data)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	perRound := map[int]int{}
	for _, a := range log.acks {
		perRound[a.round]++
		d, err := l.Lookup(a.id)
		if err != nil {
			t.Errorf("%s acknowledged in round %d, not in the ledger: %v", a.id, a.round, err)
			continue
		}
		if !bytes.Equal(d.DeviceNonce, a.deviceNonce) || d.Joined.Height != a.height || !bytes.Equal(d.Joined.Hash[:], a.hash) {
			t.Errorf("%s acknowledged at block %d %x, ledger has block %d %x", a.id, a.height, a.hash, d.Joined.Height, d.Joined.Hash)
		}
	}
	joins := map[string]int{}
	var blocks int
	err = l.Blocks(0, func(b ledger.Block) error {
		blocks++
		for _, e := range b.Events {
			if e.Type == ledger.EventJoin {
				joins[e.Device+"/"+string(e.DeviceNonce)]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range joins {
		if n != 1 {
			t.Errorf("join %q recorded %d times", strings.SplitN(k, "/", 2)[0], n)
		}
	}
	t.Logf("%d rounds: %d joins acknowledged (%v per round), %d unanswered at kills, %d replays refused; ledger: %d blocks, %d joins",
		crashRounds, len(log.acks), perRound, log.unknown, log.replayed, blocks, len(joins))
}

// libraryJoin joins a fresh device through the device library.
func libraryJoin(t *testing.T, addr, id string, round int, log *crashLog) {
	st, err := device.NewState(id)
	if err != nil {
		t.Error(err)
		return
	}
	d, err := device.Dial(addr, st)
	if err != nil {
		t.Error(err)
		return
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), crashJoinTTL)
	defer cancel()
	resp, err := d.Join(ctx, 48_856_600, 2_352_200)
	if err != nil {
		var ce *device.CodeError
		if errors.As(err, &ce) { // the server answered and refused: never expected here
			t.Errorf("join %s: %v", id, err)
			return
		}
		log.mu.Lock()
		log.unknown++
		log.mu.Unlock()
		return
	}
	log.ack(ack{id: id, deviceNonce: resp.DeviceNonce, height: resp.Height, hash: resp.BlockHash, round: round})
}

// rawJoin joins a fresh device by hand over one CoAP association, then
// replays the very same signed join: the replay must be answered 2.04 with
// the same block. The signed join is kept to be replayed after restarts.
func rawJoin(t *testing.T, addr, id string, round int, log *crashLog) {
	st, err := device.NewState(id)
	if err != nil {
		t.Error(err)
		return
	}
	conn, err := udp.Dial(addr, options.WithErrors(func(error) {}))
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), crashJoinTTL)
	defer cancel()
	key, _ := wire.EncodePublicKey(&st.Key.PublicKey)
	req := wire.JoinRequest{Cluster: crashCluster, ID: id, Key: key, Lat: 48_856_600, Lon: 2_352_200, Nonce: make([]byte, wire.NonceLen)}
	rand.Read(req.Nonce)
	sign := func() []byte {
		payload, _ := wire.Marshal(&req)
		b, err := wire.Sign1(st.Key, []byte(id), wire.AADJoinRequest, payload)
		if err != nil {
			t.Error(err)
		}
		return b
	}
	post := func(b []byte) (codes.Code, []byte, []byte, bool) {
		resp, err := conn.Post(ctx, "/join", message.AppCoseSign1, bytes.NewReader(b))
		if err != nil {
			return 0, nil, nil, false
		}
		body, _ := resp.ReadBody()
		echo, _ := resp.Echo()
		return resp.Code(), body, append([]byte{}, echo...), true
	}
	unknown := func() {
		log.mu.Lock()
		log.unknown++
		log.mu.Unlock()
	}
	code, _, echo, ok := post(sign())
	if !ok {
		unknown()
		return
	}
	if code != codes.Unauthorized || len(echo) == 0 {
		t.Errorf("%s without echo: %v", id, code)
		return
	}
	req.Echo = echo
	join := sign()
	var first *wire.JoinResponse
	for i, want := range []codes.Code{codes.Created, codes.Changed} {
		code, body, _, ok := post(join)
		if !ok {
			if i == 0 {
				unknown()
			}
			return
		}
		if code != want {
			t.Errorf("%s join #%d: %v %q, want %v", id, i+1, code, body, want)
			return
		}
		s, err := wire.ParseSign1(body)
		var resp wire.JoinResponse
		if err == nil {
			err = wire.Decode(s.Payload, &resp)
		}
		if err != nil {
			t.Errorf("%s join #%d: answer: %v", id, i+1, err)
			return
		}
		if i == 0 {
			first = &resp
			log.ack(ack{id: id, deviceNonce: req.Nonce, height: resp.Height, hash: resp.BlockHash, round: round})
			log.mu.Lock()
			log.captured = append(log.captured, join)
			log.mu.Unlock()
		} else if resp.Height != first.Height || !bytes.Equal(resp.CHNonce, first.CHNonce) {
			t.Errorf("%s: replay answered block %d, the join was in block %d", id, resp.Height, first.Height)
		}
	}
}

// replayCaptured resends every acknowledged raw join to a server that did
// not issue its echo: each must be challenged again (4.01 with an Echo).
func replayCaptured(t *testing.T, addr string, log *crashLog) {
	t.Helper()
	log.mu.Lock()
	captured := append([][]byte{}, log.captured...)
	log.mu.Unlock()
	if len(captured) == 0 {
		return
	}
	conn, err := udp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range captured {
		ctx, cancel := context.WithTimeout(context.Background(), crashJoinTTL)
		resp, err := conn.Post(ctx, "/join", message.AppCoseSign1, bytes.NewReader(b))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if echo, _ := resp.Echo(); resp.Code() != codes.Unauthorized || len(echo) == 0 {
			t.Fatalf("join replayed after a restart: %v, want 4.01 with Echo", resp.Code())
		}
	}
	log.mu.Lock()
	log.replayed += len(captured)
	log.mu.Unlock()
}
