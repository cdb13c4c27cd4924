package clusterhead_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/wire"
)

// joiner crafts join requests for one device identity over one source port,
// so the CH's echo (bound to the source address) can be answered.
type joiner struct {
	t    *testing.T
	st   *device.State
	conn *client.Conn
	req  wire.JoinRequest
}

func newJoiner(t *testing.T, conn *client.Conn, id string) *joiner {
	st, req := chtest.JoinRequest(t, chtest.Cluster, id)
	return &joiner{t: t, st: st, conn: conn, req: req}
}

// sign returns the join as the device would send it, with kid.
func (j *joiner) sign(kid string) []byte {
	j.t.Helper()
	return chtest.SignJoin(j.t, j.st, kid, &j.req)
}

func (j *joiner) post(body []byte) chtest.Response {
	j.t.Helper()
	return chtest.Post(j.t, j.conn, "/join", message.AppCoseSign1, body)
}

// fresh fetches an echo for this source and puts it in the request.
func (j *joiner) fresh() {
	j.t.Helper()
	r := j.post(j.sign(j.req.ID))
	if r.Code != codes.Unauthorized || r.Echo == nil {
		j.t.Fatalf("join without echo: got %v %q, want 4.01 with Echo", r.Code, r.Diagnostic)
	}
	j.req.Echo = r.Echo
}

func expect(t *testing.T, r chtest.Response, code codes.Code, diag string) {
	t.Helper()
	if r.Code != code || (diag != "" && r.Diagnostic != diag) {
		t.Fatalf("got %v %q, want %v %q", r.Code, r.Diagnostic, code, diag)
	}
}

// enrolled enrolls the joiner's ID and key on ch.
func (j *joiner) enrolled(ch *clusterhead.CH) *joiner {
	chtest.Enroll(j.t, ch, j.st)
	return j
}

// TestJoinRejections checks every refusal of /join: its CoAP code, its
// diagnostic, and that the ledger and index did not change. The joiner is
// enrolled, so that only the rule under test refuses it; the admission
// rejections are admission_test.go's.
func TestJoinRejections(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	chtest.Joined(t, ch, "taken")
	revoked, err := device.NewState("revoked-one")
	if err != nil {
		t.Fatal(err)
	}
	chtest.Enroll(t, ch, revoked)
	if _, err := chtest.Dial(t, ch, revoked).Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Core.Revoke(chtest.Ctx(t), "revoked-one", "test"); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		build func(j *joiner) []byte
		cf    message.MediaType
		code  codes.Code
		diag  string
	}{
		{"garbage", func(*joiner) []byte { return []byte("garbage") }, message.AppCoseSign1, codes.BadRequest, "malformed: join is not a COSE_Sign1"},
		{"payload not a join", func(j *joiner) []byte {
			b, _ := wire.Sign1(j.st.Key, []byte("x"), wire.AADJoinRequest, []byte{0xa1, 0x01, 0x02})
			return b
		}, message.AppCoseSign1, codes.BadRequest, "malformed: join payload"},
		{"duplicate map key", func(j *joiner) []byte {
			b, _ := wire.Sign1(j.st.Key, []byte("x"), wire.AADJoinRequest, []byte{0xa2, 0x01, 0x61, 'a', 0x01, 0x61, 'b'})
			return b
		}, message.AppCoseSign1, codes.BadRequest, "malformed: join payload"},
		{"other cluster", func(j *joiner) []byte { j.fresh(); j.req.Cluster = "other-cluster"; return j.sign(j.req.ID) }, message.AppCoseSign1, codes.NotFound, "unknown cluster"},
		{"no echo", func(j *joiner) []byte { return j.sign(j.req.ID) }, message.AppCoseSign1, codes.Unauthorized, "echo required"},
		{"forged echo", func(j *joiner) []byte {
			j.fresh()
			j.req.Echo[len(j.req.Echo)-1] ^= 1
			return j.sign(j.req.ID)
		}, message.AppCoseSign1, codes.Unauthorized, "echo required"},
		{"bad signature", func(j *joiner) []byte {
			j.fresh()
			b := j.sign(j.req.ID)
			b[len(b)-1] ^= 1
			return b
		}, message.AppCoseSign1, codes.Unauthorized, "bad signature"},
		{"kid is not the ID", func(j *joiner) []byte { j.fresh(); return j.sign("someone-else") }, message.AppCoseSign1, codes.Unauthorized, "bad signature"},
		{"signed by another key", func(j *joiner) []byte {
			j.fresh()
			other, _ := device.NewState(j.req.ID)
			payload, _ := wire.Marshal(&j.req)
			b, _ := wire.Sign1(other.Key, []byte(j.req.ID), wire.AADJoinRequest, payload)
			return b
		}, message.AppCoseSign1, codes.Unauthorized, "bad signature"},
		{"outside radius", func(j *joiner) []byte {
			j.fresh()
			j.req.Lat, j.req.Lon = chtest.Far.Lat, chtest.Far.Lon
			return j.sign(j.req.ID)
		}, message.AppCoseSign1, codes.Forbidden, "outside radius"},
		{"ID enrolled with another key", func(j *joiner) []byte {
			j.fresh()
			j.req.ID = "taken"
			return j.sign("taken")
		}, message.AppCoseSign1, codes.Forbidden, "not enrolled"},
		{"wrong content-format", func(j *joiner) []byte { return j.sign(j.req.ID) }, message.AppCBOR, codes.UnsupportedMediaType, ""},
		{"too large", func(*joiner) []byte { return bytes.Repeat([]byte{0}, wire.MaxPayload+1) }, message.AppCoseSign1, codes.RequestEntityTooLarge, "too large"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := newJoiner(t, conn, fmt.Sprintf("newcomer-%d", i)).enrolled(ch)
			body := tc.build(j)
			before := chtest.Snap(t, ch)
			expect(t, chtest.Post(t, conn, "/join", tc.cf, body), tc.code, tc.diag)
			chtest.Unchanged(t, ch, before)
		})
	}

	t.Run("revoked ID", func(t *testing.T) {
		// the revoked device itself, with its own key, may not come back
		d := chtest.Dial(t, ch, revoked)
		before := chtest.Snap(t, ch)
		_, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon)
		if ce, ok := err.(*device.CodeError); !ok || ce.Code != codes.Conflict || ce.Diagnostic != "id revoked" {
			t.Fatalf("rejoin after revoke: %v", err)
		}
		chtest.Unchanged(t, ch, before)
	})
}

// TestReplayedJoinChangesNothing sends the very same signed join twice: the
// second is answered 2.04 with the same block and writes nothing.
func TestReplayedJoinChangesNothing(t *testing.T) {
	ch := chtest.Start(t, "")
	j := newJoiner(t, chtest.Raw(t, ch), "sensor-r").enrolled(ch)
	j.fresh()
	join := j.sign(j.req.ID)
	first := j.post(join)
	expect(t, first, codes.Created, "")
	before := chtest.Snap(t, ch)
	again := j.post(join)
	expect(t, again, codes.Changed, "")
	chtest.Unchanged(t, ch, before)

	var a, b wire.JoinResponse
	for _, x := range []struct {
		raw []byte
		out *wire.JoinResponse
	}{{first.Body, &a}, {again.Body, &b}} {
		s, err := wire.ParseSign1(x.raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.Decode(s.Payload, x.out); err != nil {
			t.Fatal(err)
		}
	}
	if a.Height != b.Height || !bytes.Equal(a.CHNonce, b.CHNonce) {
		t.Fatalf("replay answered another join: block %d vs %d", a.Height, b.Height)
	}
}

// TestJoinsOverTheRate: a join beyond --join-rate, from a source whose
// address its echo verified, is answered 5.03 "busy: too many joins" before
// its signature is checked (iotguard_crypto_duration_seconds counts no
// verify: this one's signature is bad, and is not found to be), is counted
// (join_rate) and changes nothing. A device so answered sends its join
// again after Max-Age, and is in once the rate allows.
func TestJoinsOverTheRate(t *testing.T) {
	clock := &settable{}
	clock.unix.Store(time.Now().Unix())
	ch := chtest.Start(t, "", chtest.Open, func(c *clusterhead.Config) {
		c.Metrics = "127.0.0.1:0"
		c.Cluster.Now = clock.now
		c.Cluster.JoinRate = 1 // bursts of one; the clock stands still until the test moves it
	})
	conn := chtest.Raw(t, ch)
	first := newJoiner(t, conn, "first")
	first.fresh()
	expect(t, first.post(first.sign(first.req.ID)), codes.Created, "")

	j := newJoiner(t, conn, "second")
	j.fresh()
	body := j.sign(j.req.ID)
	body[len(body)-1] ^= 1
	before, counted, checked := chtest.Snap(t, ch), rejections(t, ch), verifies(t, ch)
	expect(t, j.post(body), codes.ServiceUnavailable, "busy: too many joins")
	chtest.Unchanged(t, ch, before)
	if got := rejections(t, ch)["join_rate"]; got != counted["join_rate"]+1 {
		t.Errorf("rejections{reason=\"join_rate\"}: %d, was %d", got, counted["join_rate"])
	}
	if got := verifies(t, ch); got != checked {
		t.Errorf("signatures checked: %d, was %d: a join over the rate was checked", got, checked)
	}
	expect(t, j.post(body), codes.ServiceUnavailable, "busy: too many joins")

	d := chtest.Device(t, ch, "third")
	joined := make(chan error, 1)
	go func() { _, err := d.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); joined <- err }()
	for i := 0; rejections(t, ch)["join_rate"] < counted["join_rate"]+3; i++ { // the device's first try, refused
		if i == 500 {
			t.Fatal("the device's join was not refused over the rate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	clock.unix.Add(1) // the rate allows one more join
	if err := <-joined; err != nil {
		t.Fatalf("join resent after Max-Age: %v", err)
	}
	if got := chtest.Height(t, ch); got != before.Head.Height+1 {
		t.Fatalf("height %d, want %d: the resent join, once", got, before.Head.Height+1)
	}
}

// verifies reads how many join signatures ch checked.
func verifies(t *testing.T, ch *clusterhead.CH) int {
	t.Helper()
	return chtest.Scrape(t, ch.MetricsAddr())[`iotguard_crypto_duration_seconds_count{op="verify"}`]
}
