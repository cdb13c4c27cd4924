package device_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

// FuzzListener feeds arbitrary payloads to a real device listener's /talk
// (Content-Format 60) and /m2m (16) over UDP, with a real CH behind it and
// one established session. Properties: every datagram is answered (the
// listener neither panics nor stalls); /m2m answers 2.04 only for a message
// that really opens in a session, and the handler runs exactly then; /talk
// answers 2.05 only for a hello whose talk proof a current member made for
// this listener's device, once per proof; nothing else succeeds.
func FuzzListener(f *testing.F) {
	ch := chtest.Start(f, "")
	m1 := chtest.Joined(f, ch, "m1")
	m2 := chtest.Joined(f, ch, "m2")
	var handled atomic.Int64
	l, err := m2.Listen("127.0.0.1:0", func(string, []byte) []byte { handled.Add(1); return nil }, nil, device.WithListenRateLimit(0))
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	talk, err := m1.Talk(chtest.Ctx(f), l.Addr().String(), "m2")
	if err != nil {
		f.Fatal(err)
	}
	defer talk.Close()
	for i := 0; i < 3; i++ {
		m, err := talk.Session.Seal([]byte("seed"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(true, m)
	}
	for _, id := range []string{"m1", "nobody", "m2"} {
		hello, err := wire.Marshal(&wire.Hello{ID: id})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, hello)
	}
	for _, peer := range []string{"m2", "m2", "m3"} {
		hello, err := m1.Hello(peer)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, hello)
	}
	k1, err := m1.MemberKeys()
	if err != nil {
		f.Fatal(err)
	}
	granted := map[string]bool{} // tags of the proofs answered 2.05
	f.Add(false, []byte("garbage"))
	f.Add(true, []byte{0x83, 0x43, 0xa1, 0x01, 0x01, 0xa0, 0x40})

	// A source endpoint has 65,536 message IDs per EXCHANGE_LIFETIME (247 s).
	// A client that sends more reuses an ID, and the listener rightly answers
	// it from its response cache with the older answer (RFC 7252 §4.5), whose
	// token the client does not know: it waits for ever. That, not the
	// listener, was the "hung" fuzzer. The fuzzer moves to a new source port
	// well before.
	const perAssociation = 30_000
	var conn *client.Conn
	var sent int
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	f.Fuzz(func(t *testing.T, m2m bool, payload []byte) {
		if sent++; conn == nil || sent > perAssociation {
			if conn != nil {
				conn.Close()
			}
			if conn, err = udp.Dial(l.Addr().String()); err != nil {
				t.Fatal(err)
			}
			sent = 1
		}
		path, cf := "/talk", message.AppCBOR
		if m2m {
			path, cf = "/m2m", message.AppCoseEncrypt0
		}
		before := handled.Load()
		resp, err := conn.Post(chtest.Ctx(t), path, cf, bytes.NewReader(payload))
		if err != nil {
			t.Fatalf("POST %s: no answer: %v", path, err)
		}
		code := resp.Code()
		ran := handled.Load() - before
		switch {
		case m2m && code == codes.Changed:
			if ran != 1 {
				t.Fatalf("/m2m 2.04 but the handler ran %d times", ran)
			}
		case ran != 0:
			t.Fatalf("%s answered %v but the handler ran %d times", path, code, ran)
		case !m2m && code == codes.Content:
			var hello wire.Hello
			if err := wire.Decode(payload, &hello); err != nil || hello.ID != "m1" || hello.Proof == nil ||
				protect.VerifyTalkProof(k1.Talk, chtest.Cluster, "m1", "m2", hello.Proof, time.Now()) != nil {
				t.Fatalf("/talk 2.05 for %x (%+v, %v): not a hello with m1's proof for m2", payload, hello, err)
			}
			if granted[string(hello.Proof.Tag)] {
				t.Fatalf("/talk 2.05 twice for the proof of %x", payload)
			}
			granted[string(hello.Proof.Tag)] = true
		case code>>5 != 4:
			t.Fatalf("%s answered %v to %x", path, code, payload)
		}
	})
}

// FuzzTalkAnswer feeds arbitrary /talk answers (2.05, Content-Format 60)
// from a hostile peer to a real initiator, with a real CH behind it: the
// client side of a talk, which decodes what a peer (or the path) says.
// Properties: Talk never panics; it succeeds only for an answer naming the
// peer and carrying a ticket the CH sealed for this initiator, and only once
// per ticket (a replayed answer would start the same session again, its
// nonces from 0: docs/PROTOCOL.md §5.1).
func FuzzTalkAnswer(f *testing.F) {
	ch := chtest.Start(f, "")
	ctx := chtest.Ctx(f)
	m1 := chtest.Joined(f, ch, "m1")
	m2 := chtest.Joined(f, ch, "m2")
	peer := startFakePeer(f)
	for range 2 {
		_, ticket, err := m2.Session(ctx, "m1")
		if err != nil {
			f.Fatal(err)
		}
		b, err := wire.Marshal(&wire.TalkResponse{ID: "m2", Ticket: *ticket})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("garbage"))
	f.Add([]byte{0xa0})
	used := map[string]bool{}
	// Every talk comes from a new source port, and the peer's go-coap server
	// keeps each endpoint's answers by message ID: once ports come round
	// again (thousands of talks a second), a talk may be answered from that
	// cache under a token it does not know, and wait. A new peer, well
	// before, has no such memory (see FuzzListener).
	const perPeer = 5_000
	var talks int
	f.Fuzz(func(t *testing.T, answer []byte) {
		if talks++; talks > perPeer {
			if err := peer.serve(); err != nil {
				t.Fatal(err)
			}
			talks = 1
		}
		peer.answer(answer)
		talk, err := m1.Talk(chtest.Ctx(t), peer.addr, "m2")
		if err != nil {
			return
		}
		defer talk.Close()
		var resp wire.TalkResponse
		if err := wire.Decode(answer, &resp); err != nil || resp.ID != "m2" || resp.Ticket.Recipient != "m1" {
			t.Fatalf("talk accepted %x (%v)", answer, err)
		}
		if used[string(talk.Session.SID)] {
			t.Fatalf("session %x started twice", talk.Session.SID)
		}
		used[string(talk.Session.SID)] = true
	})
}
