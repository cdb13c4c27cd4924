package clusterhead_test

import (
	"fmt"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/wire"
)

// signed1 is a COSE_Sign1 decoded just enough to edit its unprotected header,
// the one part a third party can change without breaking the signature.
type signed1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int]cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// TestJoinUnprotectedHeaderIsStrict: an on-path attacker who adds a label to
// the unsigned header of someone's fresh, valid join must not get it
// accepted — PROTOCOL.md §3.2 fixes unprotected = {4: kid}, and the join
// request is stored on the ledger as evidence, so an accepted copy would
// carry up to a kilobyte of the attacker's bytes into the chain.
//
// Regression: wire.ParseSign1 accepted any extra unprotected label; the CH
// answered 2.01 and wrote the altered request into the join event.
func TestJoinUnprotectedHeaderIsStrict(t *testing.T) {
	ch := chtest.Start(t, "")
	conn := chtest.Raw(t, ch)
	for _, tc := range []struct {
		name  string
		label int
		value []byte
	}{
		{"unknown label", 99, []byte{0x44, 'j', 'u', 'n', 'k'}},
		{"IV", 5, []byte{0x4c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"content type", 3, []byte{0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJoiner(t, conn, fmt.Sprintf("sensor-strict-%d", tc.label))
			j.fresh()
			var m signed1
			if err := wire.Unmarshal(j.sign(j.req.ID), &m); err != nil {
				t.Fatal(err)
			}
			m.Unprotected[tc.label] = tc.value
			before := chtest.Snap(t, ch)
			expect(t, j.post(testutil.MustMarshal(t, &m)), codes.BadRequest, "malformed: join is not a COSE_Sign1")
			chtest.Unchanged(t, ch, before)
		})
	}
}
