package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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
	clitest.RunScripts(t, map[string]func(ts *testscript.TestScript, neg bool, args []string){"localnetports": cmdLocalnetPorts})
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
