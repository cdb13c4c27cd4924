package clusterhead_test

import (
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
)

// getCluster sends GET /cluster on the joiner's association and returns the
// Echo option of the answer (nil if none).
func (j *joiner) getCluster(accept *message.MediaType) []byte {
	j.t.Helper()
	req, err := j.conn.NewGetRequest(chtest.Ctx(j.t), "/cluster")
	if err != nil {
		j.t.Fatal(err)
	}
	defer j.conn.ReleaseMessage(req)
	if accept != nil {
		req.SetAccept(*accept)
	}
	resp, err := j.conn.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer j.conn.ReleaseMessage(resp)
	if resp.Code() != codes.Content {
		j.t.Fatalf("GET /cluster: %v", resp.Code())
	}
	if e, err := resp.Echo(); err == nil {
		return append([]byte{}, e...)
	}
	return nil
}

// TestClusterAnswerCarriesEcho: the signed GET /cluster answer carries an
// Echo option for the client's address (docs/PROTOCOL.md §3.1), so a join
// signed over it is accepted at once — one device signature, no 4.01 round
// trip. The echo binds the source: the same join from another source port is
// challenged and changes nothing. The text form carries none.
func TestClusterAnswerCarriesEcho(t *testing.T) {
	ch := chtest.Start(t, "")
	j := newJoiner(t, chtest.Raw(t, ch), "sensor-echo").enrolled(ch)
	text := message.TextPlain
	if e := j.getCluster(&text); e != nil {
		t.Errorf("text/plain /cluster carries an echo %x", e)
	}
	j.req.Echo = j.getCluster(nil)
	if len(j.req.Echo) != 20 {
		t.Fatalf("GET /cluster echo = %x, want 20 bytes", j.req.Echo)
	}
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
