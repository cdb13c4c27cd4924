package clusterhead_test

import (
	"fmt"
	"maps"
	"regexp"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// getCluster sends GET /cluster on the joiner's association, with an Echo
// option if echo is not nil, and returns the answer's code and Echo option
// (nil if none).
func (j *joiner) getCluster(accept *message.MediaType, echo []byte) (codes.Code, []byte) {
	j.t.Helper()
	req, err := j.conn.NewGetRequest(chtest.Ctx(j.t), "/cluster")
	if err != nil {
		j.t.Fatal(err)
	}
	defer j.conn.ReleaseMessage(req)
	if accept != nil {
		req.SetAccept(*accept)
	}
	if echo != nil {
		req.SetOptionBytes(message.Echo, echo)
	}
	resp, err := j.conn.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer j.conn.ReleaseMessage(resp)
	if e, err := resp.Echo(); err == nil {
		return resp.Code(), append([]byte{}, e...)
	}
	return resp.Code(), nil
}

// TestClusterEchoServesTheJoin: GET /cluster from a source whose address
// no Echo verified is answered 4.01 with an Echo option (RFC 9175 §2.4);
// the same GET carrying it gets the signed answer, which carries another
// Echo (docs/PROTOCOL.md §3.1). A join signed over either is accepted at
// once — one device signature, no 4.01 on /join. The echo binds the source:
// the same join from another source port is challenged and changes nothing.
// The text form carries no Echo.
func TestClusterEchoServesTheJoin(t *testing.T) {
	ch := chtest.Start(t, "")
	j := newJoiner(t, chtest.Raw(t, ch), "sensor-echo").enrolled(ch)
	code, challenge := j.getCluster(nil, nil)
	if code != codes.Unauthorized || len(challenge) != 20 {
		t.Fatalf("GET /cluster from a new source: %v, echo %x; want 4.01 with a 20-byte echo", code, challenge)
	}
	text := message.TextPlain
	if code, e := j.getCluster(&text, challenge); code != codes.Content || e != nil {
		t.Errorf("text/plain /cluster: %v, echo %x; want 2.05 without one", code, e)
	}
	code, answered := j.getCluster(nil, challenge)
	if code != codes.Content || len(answered) != 20 {
		t.Fatalf("GET /cluster with its echo: %v, echo %x; want 2.05 with a 20-byte echo", code, answered)
	}
	for i, e := range [][]byte{challenge, answered} {
		k := newJoiner(t, j.conn, fmt.Sprintf("sensor-echo-%d", i)).enrolled(ch)
		k.req.Echo = e
		expect(t, k.post(k.sign(k.req.ID)), codes.Created, "")
	}
	j.req.Echo = answered
	signed := j.sign(j.req.ID)

	other := newJoiner(t, chtest.Raw(t, ch), "sensor-echo")
	before := chtest.Snap(t, ch)
	if r := other.post(signed); r.Code != codes.Unauthorized || r.Echo == nil {
		t.Fatalf("join with another source's echo: got %v %q, want 4.01 with Echo", r.Code, r.Diagnostic)
	}
	chtest.Unchanged(t, ch, before)

	expect(t, j.post(signed), codes.Created, "")
	if h := chtest.Height(t, ch); h != before.Head.Height+1 {
		t.Fatalf("height %d after the join, want %d", h, before.Head.Height+1)
	}
}

// TestJoinRoundTrips: a device that has never talked to the CH joins with
// one GET /cluster, padded (docs/PROTOCOL.md §2), answered 2.05 with an Echo
// at once, and one join signed over that Echo, answered 2.01; its log check
// then carries the same Echo and is answered at once too. No 4.01 on any of
// them, counted by the CH's own metrics, and no association held: each is
// served without one (coapedge, stateless.go).
func TestJoinRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []device.Option
		want map[string]int // requests by resource and code
	}{
		{"without the log check", []device.Option{device.WithoutLogCheck()}, map[string]int{"/cluster 2.05": 1, "/join 2.01": 1}},
		{"with the log check", nil, map[string]int{"/cluster 2.05": 1, "/join 2.01": 1, "/ledger/proof 2.05": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := chtest.Start(t, "", func(c *clusterhead.Config) { c.Metrics = "127.0.0.1:0" })
			st, err := device.NewState("sensor-round-trips")
			if err != nil {
				t.Fatal(err)
			}
			chtest.Enroll(t, ch, st)
			d, err := device.Dial(ch.Addr(), st, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
				t.Fatal(err)
			}
			series := regexp.MustCompile(`^iotguard_coap_requests_total\{code="([0-9.]+)",resource="([^"]+)",transport="udp"\}$`)
			got := map[string]int{}
			scraped := chtest.Scrape(t, ch.MetricsAddr())
			if n := scraped["iotguard_coap_associations"]; n != 0 {
				t.Errorf("%d associations held after the join: its requests are served without one", n)
			}
			for s, n := range scraped {
				if m := series.FindStringSubmatch(s); m != nil && n > 0 {
					got[m[2]+" "+m[1]] = n
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("requests of one join: %v, want %v", got, tc.want)
			}
		})
	}
}
