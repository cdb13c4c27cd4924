package protect_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// talkNow is the clock of the talk proof tests.
var talkNow = time.Unix(1_800_000_000, 0)

// TestTalkProof: a talk proof verifies for exactly its initiator, responder,
// cluster, nonce, time and talk key, at most TalkProofLifetime from the
// checker's clock either way; two proofs never share a nonce.
func TestTalkProof(t *testing.T) {
	k, other := testKeys(t)
	p, err := protect.NewTalkProof(k.Talk, "cluster-1", "sensor-01", "sensor-02", talkNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil || p.Time != uint64(talkNow.Unix()) {
		t.Fatalf("proof %+v: %v", p, err)
	}
	if err := protect.VerifyTalkProof(k.Talk, "cluster-1", "sensor-01", "sensor-02", p, talkNow); err != nil {
		t.Fatalf("genuine proof: %v", err)
	}
	if q, _ := protect.NewTalkProof(k.Talk, "cluster-1", "sensor-01", "sensor-02", talkNow); bytes.Equal(q.Nonce, p.Nonce) {
		t.Fatal("two proofs share a nonce")
	}
	life := protect.TalkProofLifetime
	with := func(f func(*wire.TalkProof)) *wire.TalkProof {
		c := *p
		c.Nonce, c.Tag = bytes.Clone(p.Nonce), bytes.Clone(p.Tag)
		f(&c)
		return &c
	}
	tests := []struct {
		name                string
		key                 wire.Key
		cluster, init, resp string
		proof               *wire.TalkProof
		now                 time.Time
		want                error
	}{
		{"checked a lifetime later", k.Talk, "cluster-1", "sensor-01", "sensor-02", p, talkNow.Add(life), nil},
		{"checked a lifetime earlier", k.Talk, "cluster-1", "sensor-01", "sensor-02", p, talkNow.Add(-life), nil},
		{"checked a second too late", k.Talk, "cluster-1", "sensor-01", "sensor-02", p, talkNow.Add(life + time.Second), protect.ErrStale},
		{"checked a second too early", k.Talk, "cluster-1", "sensor-01", "sensor-02", p, talkNow.Add(-life - time.Second), protect.ErrStale},
		{"another member's talk key", other.Talk, "cluster-1", "sensor-01", "sensor-02", p, talkNow, wire.ErrDecrypt},
		{"the member's ticket key", k.Ticket, "cluster-1", "sensor-01", "sensor-02", p, talkNow, wire.ErrDecrypt},
		{"another cluster", k.Talk, "cluster-2", "sensor-01", "sensor-02", p, talkNow, wire.ErrDecrypt},
		{"another initiator", k.Talk, "cluster-1", "sensor-03", "sensor-02", p, talkNow, wire.ErrDecrypt},
		{"another responder", k.Talk, "cluster-1", "sensor-01", "sensor-03", p, talkNow, wire.ErrDecrypt},
		{"initiator and responder swapped", k.Talk, "cluster-1", "sensor-02", "sensor-01", p, talkNow, wire.ErrDecrypt},
		{"time moved", k.Talk, "cluster-1", "sensor-01", "sensor-02", with(func(c *wire.TalkProof) { c.Time++ }), talkNow, wire.ErrDecrypt},
		{"nonce changed", k.Talk, "cluster-1", "sensor-01", "sensor-02", with(func(c *wire.TalkProof) { c.Nonce[11] ^= 1 }), talkNow, wire.ErrDecrypt},
		{"tag flipped", k.Talk, "cluster-1", "sensor-01", "sensor-02", with(func(c *wire.TalkProof) { c.Tag[0] ^= 0x80 }), talkNow, wire.ErrDecrypt},
		{"tag cut", k.Talk, "cluster-1", "sensor-01", "sensor-02", with(func(c *wire.TalkProof) { c.Tag = c.Tag[:8] }), talkNow, wire.ErrMalformed},
		{"nonce missing", k.Talk, "cluster-1", "sensor-01", "sensor-02", with(func(c *wire.TalkProof) { c.Nonce = nil }), talkNow, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protect.VerifyTalkProof(tt.key, tt.cluster, tt.init, tt.resp, tt.proof, tt.now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyTalkProof = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestTalkProofFreshness pins the window and the expiry a spent-proof cache
// keeps a proof until: the last second at which TalkProofFresh holds.
func TestTalkProofFreshness(t *testing.T) {
	const at = 1_800_000_000
	life := int64(protect.TalkProofLifetime / time.Second)
	exp := protect.TalkProofExpiry(at)
	if exp != at+life {
		t.Fatalf("TalkProofExpiry(%d) = %d, want %d", uint64(at), exp, at+life)
	}
	for _, c := range []struct {
		now  int64
		want bool
	}{{at - life - 1, false}, {at - life, true}, {at, true}, {exp, true}, {exp + 1, false}} {
		if got := protect.TalkProofFresh(at, time.Unix(c.now, 0)); got != c.want {
			t.Errorf("proof of %d checked at %d: fresh %v, want %v", uint64(at), c.now, got, c.want)
		}
	}
	// Times near the end of uint64 neither wrap into freshness nor overflow the expiry.
	if protect.TalkProofFresh(^uint64(0)-10, time.Unix(at, 0)) || protect.TalkProofExpiry(^uint64(0)) < 0 {
		t.Error("a proof from the end of time is fresh, or its expiry wrapped")
	}
	if protect.TalkProofFresh(0, time.Unix(at, 0)) {
		t.Error("a proof of time 0 is fresh")
	}
}
