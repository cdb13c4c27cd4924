package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/iotguard/iotguard/internal/clitest"
)

// TestMain lets the test binary double as iotguard-cometbft (see
// cmd/iotguard's TestMain).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"iotguard-cometbft": main})
}

// TestScripts runs testdata/script/*.txtar with the commands of
// clitest.Cmds, and
//
//	localnetports P2P COAP_A COAP_B   set P2P to a base port for 'localnet --p2p-port' whose four validators'
//	                                  TCP ports are free, COAP_A and COAP_B to two consecutive free UDP ports
//	killnode DIR I                    SIGKILL node I of 'localnet --processes --dir DIR' (its PID file) and
//	                                  wait until localnet has seen it exit (the PID file is gone)
//	waitheights P2P I…                wait until the nodes I… of the localnet on P2P report the same CometBFT
//	                                  height over RPC (nothing in flight: stopping them loses no block)
func TestScripts(t *testing.T) {
	clitest.RunScripts(t, map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"localnetports": cmdLocalnetPorts, "killnode": cmdKillNode, "waitheights": cmdWaitHeights})
}

// scriptWait bounds the waits of killnode and waitheights.
const scriptWait = 30 * time.Second

func cmdKillNode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: killnode DIR I")
	}
	file := ts.MkAbs(filepath.Join(args[0], "node"+args[1]+".pid"))
	b, err := os.ReadFile(file)
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	ts.Check(err)
	ts.Check(syscall.Kill(pid, syscall.SIGKILL))
	for deadline := time.Now().Add(scriptWait); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s still there %v after SIGKILL", file, scriptWait)
		}
	}
}

func cmdWaitHeights(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitheights P2P I…")
	}
	base, err := strconv.Atoi(args[0])
	ts.Check(err)
	client := &http.Client{Timeout: 2 * time.Second}
	height := func(node string) string {
		i, err := strconv.Atoi(node)
		ts.Check(err)
		resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(base+10*i+1) + "/status")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var st struct {
			Result struct {
				SyncInfo struct {
					Height string `json:"latest_block_height"`
				} `json:"sync_info"`
			} `json:"result"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return err.Error()
		}
		return st.Result.SyncInfo.Height
	}
	for deadline := time.Now().Add(scriptWait); ; time.Sleep(50 * time.Millisecond) {
		var heights []string
		for _, node := range args[1:] {
			heights = append(heights, height(node))
		}
		_, numeric := strconv.Atoi(heights[0])
		if numeric == nil && !slices.ContainsFunc(heights, func(h string) bool { return h != heights[0] }) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("nodes %v report heights %q after %v", args[1:], heights, scriptWait)
		}
	}
}

const localnetValidators = 4 // localnet's default

func cmdLocalnetPorts(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: localnetports P2P COAP_A COAP_B")
	}
	p2p, err := freeRange("tcp", func(base int) []int {
		var ports []int
		for i := range localnetValidators {
			ports = append(ports, base+10*i, base+10*i+1)
		}
		return ports
	})
	ts.Check(err)
	coap, err := freeRange("udp", func(base int) []int { return []int{base, base + 1} })
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(p2p))
	ts.Setenv(args[1], strconv.Itoa(coap))
	ts.Setenv(args[2], strconv.Itoa(coap+1))
}

// freeRange returns a base port whose ports(base) were all free on
// 127.0.0.1 a moment ago.
func freeRange(network string, ports func(base int) []int) (int, error) {
	listen := func(addr string) (io.Closer, error) {
		if network == "tcp" {
			return net.Listen(network, addr)
		}
		return net.ListenPacket(network, addr)
	}
	for range 100 {
		base := 20000 + rand.IntN(30000)
		var held []io.Closer
		free := true
		for _, p := range ports(base) {
			c, err := listen("127.0.0.1:" + strconv.Itoa(p))
			if err != nil {
				free = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no free %s port range on 127.0.0.1", network)
}
