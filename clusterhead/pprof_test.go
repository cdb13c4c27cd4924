package clusterhead_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
)

// get fetches http://addr+path over a real TCP socket and returns the status
// and body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The metrics address serves net/http/pprof only when Pprof is set; the
// metrics themselves are served either way.
func TestPprofOnMetricsAddress(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		ch := chtest.Start(t, t.TempDir(), func(c *clusterhead.Config) {
			c.Metrics = "127.0.0.1:0"
			c.Pprof = pprof
		})
		addr := ch.MetricsAddr()
		if code, body := get(t, addr, "/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("pprof=%v: /metrics answered %d", pprof, code)
		}
		code, body := get(t, addr, "/debug/pprof/")
		switch {
		case pprof && (code != http.StatusOK || !strings.Contains(body, "goroutine")):
			t.Errorf("pprof on: /debug/pprof/ answered %d, %.80q", code, body)
		case !pprof && code != http.StatusNotFound:
			t.Errorf("pprof off: /debug/pprof/ answered %d, want 404", code)
		}
		// A named profile, as go tool pprof fetches it.
		code, _ = get(t, addr, "/debug/pprof/heap?debug=1")
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[pprof]; code != want {
			t.Errorf("pprof=%v: /debug/pprof/heap answered %d, want %d", pprof, code, want)
		}
	}
}

// Pprof without a metrics address is refused: the profiles have no other
// place to be served.
func TestPprofNeedsMetrics(t *testing.T) {
	_, err := clusterhead.Start(clusterhead.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), NoAdmin: true, Pprof: true})
	if !errors.Is(err, clusterhead.ErrPprofWithoutMetrics) {
		t.Fatalf("Start with Pprof and no Metrics: %v, want ErrPprofWithoutMetrics", err)
	}
}
