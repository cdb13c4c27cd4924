package clusterhead_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// startCoaps runs a CH with a coaps listener on 127.0.0.1.
func startCoaps(t testing.TB) *clusterhead.CH {
	t.Helper()
	return chtest.Start(t, "", func(c *clusterhead.Config) {
		c.DTLSListen = "127.0.0.1:0"
		c.DTLS.HandshakeTimeout = 3 * time.Second
	})
}

// coaps opens a DTLS association to ch as d, with d's PSK (or key, if not
// nil), and completes the handshake (bounded: chtest.HandshakeBound).
func coaps(t testing.TB, ch *clusterhead.CH, d *device.Device, key []byte) (*client.Conn, error) {
	t.Helper()
	id, psk, err := d.PSK()
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		psk = key
	}
	return chtest.DialDTLS(t, ch.DTLSAddr(), id, psk, piondtls.TLS_PSK_WITH_AES_128_CCM_8)
}

// post sends a plaintext CBOR request over coaps and returns the answer's
// code and body; err when there is no answer (bounded: 3 s).
func post(t *testing.T, c *client.Conn, path string, req any) (codes.Code, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	resp, err := c.Post(ctx, path, message.AppCBOR, bytes.NewReader(testMarshal(t, req)))
	if err != nil {
		return 0, nil, err
	}
	body, err := resp.ReadBody()
	return resp.Code(), body, err
}

func testMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCoapsMember: over coaps a member verifies a peer, gets a session
// whose grant and ticket open under each member's key, and leaves; the
// requester is always the DTLS identity.
func TestCoapsMember(t *testing.T) {
	ch := startCoaps(t)
	a := chtest.Joined(t, ch, "sensor-a")
	b := chtest.Joined(t, ch, "sensor-b")
	conn, err := coaps(t, ch, a, nil)
	if err != nil {
		t.Fatal(err)
	}

	code, body, err := post(t, conn, "/verify", &wire.VerifyRequest{Peer: "sensor-b"})
	var v wire.VerifyResponse
	if err != nil || code != codes.Content || wire.Decode(body, &v) != nil || v.Status.Membership() != membership.Member || v.Peer != "sensor-b" {
		t.Fatalf("/verify: %v %x %v (%+v)", code, body, err, v)
	}
	code, body, err = post(t, conn, "/verify", &wire.VerifyRequest{Peer: "nobody"})
	if err != nil || code != codes.Content || wire.Decode(body, &v) != nil || v.Status.Membership() != membership.Unknown {
		t.Fatalf("/verify nobody: %v %+v %v", code, v, err)
	}

	// sensor-a asks as M2 for a session with sensor-b, the initiator.
	code, body, err = post(t, conn, "/session", &wire.SessionRequest{Peer: "sensor-b"})
	var s wire.SessionResponse
	if err != nil || code != codes.Content || wire.Decode(body, &s) != nil {
		t.Fatalf("/session: %v %x %v", code, body, err)
	}
	mine, err := a.OpenTicket(s.Grant, "sensor-b", "sensor-b", "sensor-a")
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	theirs, err := b.OpenTicket(s.Ticket, "sensor-a", "sensor-b", "sensor-a")
	if err != nil {
		t.Fatalf("ticket: %v", err)
	}
	msg, err := theirs.Seal([]byte("over coaps"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mine.Open(msg); err != nil || string(got) != "over coaps" {
		t.Fatalf("the two sides of the session do not share Sk: %q %v", got, err)
	}

	before := chtest.Height(t, ch)
	code, body, err = post(t, conn, "/leave", &wire.LeaveRequest{})
	var l wire.LeaveResponse
	if err != nil || code != codes.Changed || wire.Decode(body, &l) != nil || l.Height != before+1 {
		t.Fatalf("/leave: %v %x %v", code, body, err)
	}
	if d, err := ch.Ledger.Lookup("sensor-a"); err != nil || d.Status != membership.Left {
		t.Fatalf("after /leave over coaps: %+v %v", d, err)
	}
	// The leave ended the association: its PSK died with the member key. It
	// stays open a moment after the leave's answer, serving nothing.
	if code, body, err := post(t, conn, "/verify", &wire.VerifyRequest{Peer: "sensor-b"}); err == nil &&
		(code != codes.Unauthorized || string(body) != "unauthorized: session ended") {
		t.Fatalf("the association of a member that left still answered %v %q", code, body)
	}
	if _, err := coaps(t, ch, a, nil); err == nil {
		t.Fatal("a device that left completed a handshake")
	}
}

// TestCoapsRevokedSessionStops: an operator's revocation ends the member's
// open DTLS association at once.
func TestCoapsRevokedSessionStops(t *testing.T) {
	ch := startCoaps(t)
	a := chtest.Joined(t, ch, "sensor-a")
	chtest.Joined(t, ch, "sensor-b")
	conn, err := coaps(t, ch, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := post(t, conn, "/verify", &wire.VerifyRequest{Peer: "sensor-b"}); err != nil || code != codes.Content {
		t.Fatalf("/verify: %v %v", code, err)
	}
	if _, err := ch.Core.Revoke(chtest.Ctx(t), "sensor-a", "stolen"); err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, ch)
	if code, _, err := post(t, conn, "/verify", &wire.VerifyRequest{Peer: "sensor-b"}); err == nil {
		t.Fatalf("a revoked member's association still answered %v", code)
	}
	chtest.Unchanged(t, ch, before)
}

// TestCoapsHandshakeRefused: a wrong key, an unknown identity and a device
// that never joined fail the handshake; nothing reaches the ledger.
func TestCoapsHandshakeRefused(t *testing.T) {
	ch := startCoaps(t)
	a := chtest.Joined(t, ch, "sensor-a")
	stranger := chtest.Enrolled(t, ch, "stranger")
	if _, err := stranger.Join(chtest.Ctx(t), chtest.Near.Lat, chtest.Near.Lon); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Core.Revoke(chtest.Ctx(t), "stranger", "test"); err != nil {
		t.Fatal(err)
	}
	before := chtest.Snap(t, ch)
	if _, err := coaps(t, ch, a, bytes.Repeat([]byte{'0'}, 32)); err == nil {
		t.Error("handshake with a wrong PSK completed")
	}
	if _, err := coaps(t, ch, stranger, nil); err == nil {
		t.Error("handshake of a revoked device completed")
	}
	chtest.Unchanged(t, ch, before)
}

// FuzzCoapsPlain feeds arbitrary plaintext bodies to the core's coaps
// handlers as a member would send them over DTLS: nothing panics, and every
// refusal is a rejection with its CoAP code (coapsrv's table), never an
// internal error.
func FuzzCoapsPlain(f *testing.F) {
	f.Add(byte(0), testMarshal(f, &wire.VerifyRequest{Peer: "m2"}))
	f.Add(byte(1), testMarshal(f, &wire.SessionRequest{Peer: "m2"}))
	f.Add(byte(2), []byte{0xa0})
	f.Add(byte(0), []byte("garbage"))
	ch := chtest.Start(f, "")
	chtest.Joined(f, ch, "m1")
	chtest.Joined(f, ch, "m2")
	serve := []func(context.Context, string, []byte) ([]byte, error){ch.Core.VerifyPlain, ch.Core.SessionPlain, ch.Core.LeavePlain}
	f.Fuzz(func(t *testing.T, which byte, body []byte) {
		_, err := serve[int(which)%len(serve)](chtest.Ctx(t), "m1", body)
		if err != nil && !isRejection(err) {
			t.Fatalf("body %x: %v is not a rejection", body, err)
		}
	})
}

// isRejection reports whether err is one of the core's rejections.
func isRejection(err error) bool {
	for _, r := range []error{cluster.ErrMalformed, cluster.ErrNotMember, cluster.ErrPeerNotMember, cluster.ErrUnauthorized} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}
