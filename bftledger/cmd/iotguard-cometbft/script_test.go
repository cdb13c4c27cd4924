package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"testing"

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
func TestScripts(t *testing.T) {
	cmds := clitest.Cmds()
	cmds["localnetports"] = cmdLocalnetPorts
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Cmds:                cmds,
	})
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
	for range 100 {
		base := 20000 + rand.IntN(30000)
		var closers []func() error
		free := true
		for _, p := range ports(base) {
			addr := "127.0.0.1:" + strconv.Itoa(p)
			if network == "tcp" {
				l, err := net.Listen(network, addr)
				if err != nil {
					free = false
					break
				}
				closers = append(closers, l.Close)
			} else {
				c, err := net.ListenPacket(network, addr)
				if err != nil {
					free = false
					break
				}
				closers = append(closers, c.Close)
			}
		}
		for _, c := range closers {
			c()
		}
		if free {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no free %s port range on 127.0.0.1", network)
}
