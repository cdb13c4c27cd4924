package cluster_test

import (
	"testing"

	"github.com/iotguard/iotguard/protect"
)

// BenchmarkVerifyExchange is one /verify's work outside the transport, both
// sides: the device seals the request, the core opens, decides and seals
// the verdict, the device opens and decodes it. This is what a /verify costs
// beyond a bare echo of the same sizes (docs/PERFORMANCE.md).
func BenchmarkVerifyExchange(b *testing.B) {
	e := newEnv(b)
	asker := e.device("asker").mustJoin()
	e.device("subject").mustJoin()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := asker.verify("subject"); err != nil || !v.Status.Current() {
			b.Fatalf("verify = %+v, %v", v, err)
		}
	}
}

// BenchmarkSessionExchange is one /session's work outside the transport,
// both sides: the device seals the request; the core opens it, checks both
// members, draws Sk, seals the two tickets and the answer and adds the
// grant's record to the open batch; the device opens the answer and its
// ticket (docs/PERFORMANCE.md).
func BenchmarkSessionExchange(b *testing.B) {
	e := newEnv(b)
	e.device("m1").mustJoin()
	m2 := e.device("m2").mustJoin()
	b.ReportAllocs()
	for b.Loop() {
		s, err := m2.session("m1")
		if err != nil || s.Grant == nil {
			b.Fatalf("session = %+v, %v", s, err)
		}
		if _, err := protect.OpenTicket(m2.keys.Ticket, clusterID, "m2", s.Grant, e.now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerHead is GET /ledger/head's work in the core while the
// ledger does not move: a read of the head, and its signature only when the
// head is new (docs/PERFORMANCE.md, "Round two, sixteenth part").
func BenchmarkLedgerHead(b *testing.B) {
	e := newEnv(b)
	e.device("a").mustJoin()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.core.LedgerHead(); err != nil {
			b.Fatal(err)
		}
	}
}
