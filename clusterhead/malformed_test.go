package clusterhead_test

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/internal/logtest"
)

// TestMalformedDatagramsNotLogged: datagrams that are not CoAP, from an
// endpoint that holds an association and from new ones, write no log line
// at Warn (they once wrote one each: 20,000 datagrams, 12,499 lines) and
// are counted in iotguard_coap_dropped_total{reason="malformed"}.
func TestMalformedDatagramsNotLogged(t *testing.T) {
	rec := &logtest.Records{}
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Logger = rec.Logger()
		c.Metrics = "127.0.0.1:0"
	})
	held := chtest.NewSocket(t, ch.Addr(), "127.0.0.1:0")
	// The probe makes the association; its answer comes after every
	// datagram sent before it was read (one read loop).
	probe := func() {
		t.Helper()
		if a, _, _ := held.Exchange(chtest.Request(message.NonConfirmable, codes.POST, "/verify")); a.Code != codes.UnsupportedMediaType {
			t.Fatalf("probe: %s", chtest.Describe(a))
		}
	}
	probe()
	// NON POST with option delta 15 and a length: not CoAP.
	malformed := func(mid int) []byte { return []byte{0x50, 0x02, byte(mid >> 8), byte(mid), 0xf1, 0x00} }
	const batches, perBatch, fresh = 20, 100, 50
	for b := range batches {
		for i := range perBatch { // in batches: none lost in a full socket buffer
			held.Send(malformed(b*perBatch + i))
		}
		probe()
	}
	for i := range fresh {
		chtest.NewSocket(t, ch.Addr(), "127.0.0.1:0").Send(malformed(i))
	}
	probe()
	m := chtest.Scrape(t, ch.MetricsAddr())
	if got, want := m[fmt.Sprintf("iotguard_coap_dropped_total{reason=%q}", coapedge.DropMalformed)], batches*perBatch+fresh; got != want {
		t.Errorf("dropped as malformed: %d, want %d", got, want)
	}
	if warn := rec.At(slog.LevelWarn); len(warn) != 0 {
		t.Errorf("%d Warn lines for %d malformed datagrams, want none; last: %s", len(warn), batches*perBatch+fresh, warn[len(warn)-1].Message)
	}
}
