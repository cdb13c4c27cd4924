package cluster_test

import "testing"

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
