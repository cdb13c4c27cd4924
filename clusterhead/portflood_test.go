package clusterhead_test

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
)

var floodPorts = flag.Int("flood-ports", 12_000, "source endpoints of TestSourcePortFlood (make flood: 100000)")

// rssMiB is this process's resident set (VmRSS), in MiB.
func rssMiB(t *testing.T) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var kb float64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// TestSourcePortFlood: a flood of one-datagram sources, each from a source
// endpoint (address:port) of its own — what a spoofer cycling through ports
// and addresses looks like — against a CH with iotguard serve's defaults,
// the CH in this process. go-coap used to make a connection (a goroutine,
// ~15 KiB) for each before any check of ours, with no bound: now the CH
// holds at most DefaultMaxCoAPAssociations, made at most DefaultCoAPAssociationRate
// a second, and drops the rest unanswered, counted. A request (GET
// /cluster) makes no association at all — every CH resource is Stateless —;
// at most coapedge's MaxStateless are served at once, and the rest are
// dropped.
//
// The sources are 127.100.x.1 (a new address every 40,000 ports) on ports
// 20000-59999; each datagram is a CoAP ping (an empty CON: one of the few
// datagrams still given an association, answered with a Reset), or the
// cheapest real request, a NON GET /cluster without token (served without
// one). Bounded: -flood-ports
// datagrams (12,000 in make test; make flood sends 100,000 and logs the
// figures for docs/SECURITY.md) and two minutes. The probe that ends the
// flood, a request, is read after it: the CH reads datagrams in order on
// one loop, so when the probe is answered every datagram of the flood has
// been admitted or dropped — by the CH, or by the kernel when the flood
// outran the CH (the probe is then sent again).
func TestSourcePortFlood(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flood     message.Message
		stateless bool
	}{
		{"associations", message.Message{Type: message.Confirmable, Code: codes.Empty}, false},
		{"stateless", chtest.Request(message.NonConfirmable, codes.GET, "/cluster"), true},
	} {
		t.Run(tc.name, func(t *testing.T) { sourcePortFlood(t, tc.flood, tc.stateless) })
	}
}

func sourcePortFlood(t *testing.T, flood message.Message, stateless bool) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.RateLimit = coapedge.DefaultRateLimit
		c.MaxAssociations = coapedge.DefaultMaxCoAPAssociations
		c.AssociationRate = coapedge.DefaultCoAPAssociationRate
		c.Metrics = "127.0.0.1:0"
	})
	before := chtest.Snap(t, ch)
	probe := chtest.NewSocket(t, ch.Addr(), "127.0.0.1:0")
	probeReq := func() message.Message { return chtest.Request(message.NonConfirmable, codes.POST, "/verify") }
	if a, _, _ := probe.Exchange(probeReq()); a.Code != codes.UnsupportedMediaType {
		t.Fatalf("probe: %s", chtest.Describe(a))
	}
	raddr, err := net.ResolveUDPAddr("udp", ch.Addr())
	if err != nil {
		t.Fatal(err)
	}
	flood.MessageID = 0x1234
	req := chtest.Datagram(t, flood)
	goroutines, heap, rss := runtime.NumGoroutine(), heapMiB(), rssMiB(t)
	peakRSS, peakGoroutines := rss, goroutines
	start := time.Now()
	sent, skipped := 0, 0
	for i := 0; i < *floodPorts && time.Since(start) < 2*time.Minute; i++ {
		local := &net.UDPAddr{IP: net.IPv4(127, byte(100+i/40_000), 0, 1), Port: 20_000 + i%40_000}
		c, err := net.DialUDP("udp", local, raddr)
		if err != nil { // the port is taken on this machine
			skipped++
			continue
		}
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if sent++; sent%2_000 == 0 {
			// A request is served during the flood (it needs no
			// association); the peaks are sampled meanwhile.
			probe.ExchangeLossy(probeReq(), 30, 2*time.Second)
			peakRSS, peakGoroutines = max(peakRSS, rssMiB(t)), max(peakGoroutines, runtime.NumGoroutine())
		}
	}
	if a := probe.ExchangeLossy(probeReq(), 30, 2*time.Second); a.Code != codes.UnsupportedMediaType {
		t.Fatalf("probe after the flood: %s", chtest.Describe(a))
	}
	took := time.Since(start)
	m := chtest.Scrape(t, ch.MetricsAddr())
	held := m["iotguard_coap_associations"]
	dropped := map[string]int{}
	for _, reason := range coapedge.DropReasons {
		dropped[reason] = m[fmt.Sprintf("iotguard_coap_dropped_total{reason=%q}", reason)]
	}
	endRSS, endGoroutines := rssMiB(t), runtime.NumGoroutine()
	peakRSS, peakGoroutines = max(peakRSS, endRSS), max(peakGoroutines, endGoroutines)
	t.Logf("%d source endpoints (%d ports taken) in %v: %d associations held, dropped %v; goroutines %d → %d (peak %d), heap %.1f → %.1f MiB, RSS %.1f → %.1f MiB (peak %.1f)",
		sent, skipped, took.Round(time.Millisecond), held, dropped, goroutines, endGoroutines, peakGoroutines, heap, heapMiB(), rss, endRSS, peakRSS)
	if held > coapedge.DefaultMaxCoAPAssociations {
		t.Errorf("%d associations held, more than the cap of %d", held, coapedge.DefaultMaxCoAPAssociations)
	}
	if stateless && held != 0 {
		t.Errorf("%d associations held after a flood of requests served without one, want none", held)
	}
	if stateless && peakGoroutines-goroutines > coapedge.MaxStateless+100 {
		t.Errorf("goroutines grew by %d over the flood: more than the %d requests served without an association at once", peakGoroutines-goroutines, coapedge.MaxStateless)
	}
	if admitted := sent - dropped[coapedge.DropAssociationCap] - dropped[coapedge.DropAssociationRate] - dropped[coapedge.DropSourceRate]; admitted < held {
		t.Errorf("%d associations held, but only %d of the flood admitted", held, admitted)
	}
	if sent > coapedge.DefaultMaxCoAPAssociations && peakGoroutines-goroutines > coapedge.DefaultMaxCoAPAssociations+100 {
		t.Errorf("goroutines grew by %d over the flood: more connections than the cap of %d", peakGoroutines-goroutines, coapedge.DefaultMaxCoAPAssociations)
	}
	chtest.Unchanged(t, ch, before)
}

// TestMemberServedWhenAssociationsFull: spoofed new source endpoints can
// fill the association cap (here 2, by two pings: a CoAP ping is one of
// the few datagrams still given an association), yet a member's
// protected requests from a new endpoint are served, and its join before
// them: none needs an association. Before, a member idle for 16 s was
// locked out until the spoofed endpoints aged out.
func TestMemberServedWhenAssociationsFull(t *testing.T) {
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.MaxAssociations = 2
		c.Metrics = "127.0.0.1:0"
	})
	for range 2 {
		s := chtest.NewSocket(t, ch.Addr(), "")
		if a, _, _ := s.Exchange(message.Message{Type: message.Confirmable, Code: codes.Empty, MessageID: 0x77}); a.Type != message.Reset {
			t.Fatalf("ping: %s", chtest.Describe(a))
		}
	}
	if held := chtest.Scrape(t, ch.MetricsAddr())["iotguard_coap_associations"]; held != 2 {
		t.Fatalf("%d associations held, want the cap of 2", held)
	}
	d := chtest.Joined(t, ch, "sensor-a")
	chtest.Joined(t, ch, "sensor-b")
	if _, err := d.Verify(chtest.Ctx(t), "sensor-b"); err != nil {
		t.Fatalf("a member's /verify with the association cap full: %v", err)
	}
	if _, _, err := d.Session(chtest.Ctx(t), "sensor-b"); err != nil {
		t.Fatalf("a member's /session with the association cap full: %v", err)
	}
}
