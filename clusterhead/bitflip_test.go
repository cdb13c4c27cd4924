package clusterhead_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// flips returns a copy of b for every byte index i with bit i%8 of that
// byte inverted: every byte, and every bit position, is hit.
func flips(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = bytes.Clone(b)
		out[i][i] ^= 1 << (i % 8)
	}
	return out
}

// rejectAll posts every flipped copy of body to path and fails unless each
// is refused with a 4.xx (a 5.xx would be a bug, a 2.xx a forgery) and the
// ledger is unchanged. It returns how many times each code was seen.
func rejectAll(t *testing.T, post func([]byte) chtest.Response, body []byte, snap func() chtest.Snapshot, unchanged func(chtest.Snapshot)) map[string]int {
	t.Helper()
	before := snap()
	seen := map[string]int{}
	for i, b := range flips(body) {
		r := post(b)
		if r.Code>>5 != 4 {
			t.Fatalf("byte %d (%#02x → %#02x): got %v %q, want a 4.xx", i, body[i], b[i], r.Code, r.Diagnostic)
		}
		seen[fmt.Sprintf("%v %s", r.Code, r.Diagnostic)]++
	}
	unchanged(before)
	return seen
}

// TestBitFlippedJoin flips one bit in every byte of a valid, fresh, signed
// join and posts each copy: every one is refused, nothing is written, and
// the untouched join is accepted afterwards (so the flips did not fail for
// a reason the original shares, such as a stale echo).
func TestBitFlippedJoin(t *testing.T) {
	ch := chtest.Start(t, "")
	j := newJoiner(t, chtest.Raw(t, ch), "sensor-flip").enrolled(ch)
	j.fresh()
	join := j.sign(j.req.ID)

	seen := rejectAll(t, j.post, join, func() chtest.Snapshot { return chtest.Snap(t, ch) },
		func(s chtest.Snapshot) { chtest.Unchanged(t, ch, s) })
	t.Logf("%d flipped joins: %v", len(join), seen)
	expect(t, j.post(join), codes.Created, "")
}

// TestBitFlippedProtectedRequest does the same for a protected /session
// request (whose success writes a session event): every flip is refused
// without moving the member's replay window — the original, sent last, is
// still accepted.
func TestBitFlippedProtectedRequest(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	a := joinMember(t, ch, "sensor-a")
	joinMember(t, ch, "sensor-b")
	post := func(b []byte) chtest.Response {
		return chtest.Post(t, conn, "/session", message.AppCoseEncrypt0, b)
	}
	req := a.seal(t, protect.PathSession, &wire.SessionRequest{Peer: "sensor-b"})

	seen := rejectAll(t, post, req, func() chtest.Snapshot { return chtest.Snap(t, ch) },
		func(s chtest.Snapshot) { chtest.Unchanged(t, ch, s) })
	t.Logf("%d flipped requests: %v", len(req), seen)
	before := chtest.Height(t, ch)
	expect(t, post(req), codes.Content, "")
	if chtest.Height(t, ch) == before {
		t.Fatal("the original session request wrote no block")
	}
}
