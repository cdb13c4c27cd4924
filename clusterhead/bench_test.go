package clusterhead_test

import (
	"fmt"
	"testing"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
)

// BenchmarkVerify measures /verify round trips over loopback UDP, with
// metrics off and on, from 8 devices in parallel. Compare the two with
// benchstat: metrics must not cost measurable throughput.
func BenchmarkVerify(b *testing.B) {
	for _, metricsOn := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", metricsOn), func(b *testing.B) {
			ch := chtest.Start(b, "", func(c *clusterhead.Config) {
				c.RateLimit = 0
				if metricsOn {
					c.Metrics = "127.0.0.1:0"
				}
			})
			defer ch.Close()
			chtest.Joined(b, ch, "subject")
			const devices = 8
			next := make(chan int, devices)
			for i := 0; i < devices; i++ {
				next <- i
			}
			b.SetParallelism(devices / 2) // 2 cores × 4 = 8 goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				d := chtest.Joined(b, ch, fmt.Sprintf("asker-%d", <-next))
				for pb.Next() {
					if _, err := d.Verify(chtest.Ctx(b), "subject"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
