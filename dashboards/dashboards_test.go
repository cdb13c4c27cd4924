// Package dashboards_test checks the Grafana dashboard and the alert rules
// against a real Prometheus scraping a real cluster head.
package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/ledger"
)

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (make deps installs it)", bin)
		}
		t.Skipf("%s not installed; run make deps", bin)
	}
	return p
}

func TestPromtoolChecks(t *testing.T) {
	promtool := need(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"check", "config", "prometheus.yml"}, {"test", "rules", "alerts_test.yml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// query runs an instant PromQL query and returns how many series it gave.
func query(ctx context.Context, api, expr string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable { // still starting: no data yet
		return 0, nil
	}
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("query %q: %s", expr, out.Error)
	}
	return len(out.Data.Result), nil
}

// startPrometheus runs prometheus (the binary at prom) until ctx ends or the
// test does, scraping each second what scrapeConfigs (YAML list items)
// name, and returns its API's base URL and its log.
func startPrometheus(ctx context.Context, t *testing.T, prom, scrapeConfigs string) (api string, log *strings.Builder) {
	t.Helper()
	dir := t.TempDir()
	cfg := "global: {scrape_interval: 1s}\nscrape_configs:\n" + scrapeConfigs
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	web := freePort(t)
	cmd := exec.CommandContext(ctx, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	log = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return "http://" + web, log
}

// TestPrometheusScrapesWithCredentials: a CH whose metrics address takes a
// web configuration (TLS and basic authentication) is scraped by a real
// Prometheus given the CA and the credentials — its up is 1 — and not by one
// without the credentials (up 0).
func TestPrometheusScrapesWithCredentials(t *testing.T) {
	prom := need(t, "prometheus")
	dir := t.TempDir()
	webConfig := testutil.WebConfig(t, dir, "prometheus", "s3cret", true)
	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Metrics, c.MetricsWebConfig = "127.0.0.1:0", webConfig
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job := func(name, auth string) string {
		return fmt.Sprintf("  - job_name: %s\n    scheme: https\n    tls_config: {ca_file: %q}\n%s    static_configs: [{targets: [%q]}]\n",
			name, filepath.Join(dir, "ca.pem"), auth, ch.MetricsAddr())
	}
	api, log := startPrometheus(ctx, t, prom, job("with", "    basic_auth: {username: prometheus, password: s3cret}\n")+job("without", ""))
	pending := map[string]bool{`up{job="with"} == 1`: true, `up{job="without"} == 0`: true}
	for round := 0; round < 120 && len(pending) > 0; round++ { // bounded: a minute
		time.Sleep(500 * time.Millisecond)
		for expr := range pending {
			if n, err := query(ctx, api, expr); err == nil && n == 1 {
				delete(pending, expr)
			}
		}
	}
	for expr := range pending {
		t.Errorf("no series for %s", expr)
	}
	if t.Failed() {
		t.Logf("prometheus log:\n%s", log.String())
	}
}

// TestEveryPanelHasData runs a CH with metrics, drives devices through every
// resource, lets a real Prometheus scrape it each second, and requires every
// panel query of dashboards/iotguard.json to return data.
func TestEveryPanelHasData(t *testing.T) {
	prom := need(t, "prometheus")
	var dash dashboard
	b, err := os.ReadFile("iotguard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}

	ch := chtest.Start(t, "", func(c *clusterhead.Config) {
		c.Metrics = "127.0.0.1:0"
		c.MaxAssociations, c.AssociationRate = coapedge.DefaultMaxCoAPAssociations, coapedge.DefaultCoAPAssociationRate
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api, log := startPrometheus(ctx, t, prom, fmt.Sprintf("  - job_name: iotguard\n    static_configs: [{targets: [%q]}]\n", ch.MetricsAddr()))

	// Traffic: every resource, every outcome a panel shows. Bounded: at most
	// 200 rounds, one every 250 ms, while the queries wait for data.
	chtest.Joined(t, ch, "sensor-a")
	rounds := 0
	traffic := func(i int) {
		b := chtest.Enrolled(t, ch, fmt.Sprintf("sensor-%d", i))
		defer b.Close()
		_, _ = b.Join(ctx, chtest.Near.Lat, chtest.Near.Lon)
		_, _ = b.Verify(ctx, "sensor-a")
		_, _ = b.Verify(ctx, "nobody")
		_, _, _ = b.Session(ctx, "sensor-a")
		far := chtest.Device(t, ch, fmt.Sprintf("far-%d", i))
		defer far.Close()
		_, _ = far.Join(ctx, chtest.Far.Lat, chtest.Far.Lon)
	}

	rate := "30s"
	pending := map[string]string{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Fatalf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			pending[p.Title] = strings.ReplaceAll(tg.Expr, "$__rate_interval", rate)
		}
	}
	for ; rounds < 200 && len(pending) > 0; rounds++ {
		traffic(rounds)
		time.Sleep(250 * time.Millisecond)
		for title, expr := range pending {
			n, err := query(ctx, api, expr)
			if err != nil && !strings.Contains(err.Error(), "connect") {
				t.Fatalf("panel %q: %v", title, err)
			}
			if n > 0 {
				delete(pending, title)
			}
		}
	}
	for title, expr := range pending {
		t.Errorf("panel %q returned no data: %s", title, expr)
	}
	if t.Failed() {
		t.Logf("prometheus log:\n%s", log.String())
	}

	// The histograms counted the operations that happened.
	for _, op := range []string{"sign", "verify", "ecdh", "hkdf", "aead_seal", "aead_open", "ledger_append"} {
		n, err := query(ctx, api, fmt.Sprintf(`iotguard_crypto_duration_seconds_count{op=%q} > 0`, op))
		if err != nil || n != 1 {
			t.Errorf("crypto histogram for %s counted nothing (%v)", op, err)
		}
	}

	// Exact counts, read from the CH's own /metrics once the audit records
	// are written: every ledger event was one timed append, every join
	// inside R had its signature verified once (1 + 1 per round; the one
	// outside R is refused before its signature is checked), and each was
	// answered at once — each device's GET /cluster, padded
	// (docs/PROTOCOL.md §2), was answered at once with its Echo, never
	// challenged, and the device signed its join over that echo, so no join
	// met a 4.01. No datagram of this traffic was dropped.
	ch.Core.Flush()
	events := 0
	if err := ch.Ledger.Blocks(0, func(b ledger.Block) error { events += len(b.Events); return nil }); err != nil {
		t.Fatal(err)
	}
	scraped := chtest.Scrape(t, ch.MetricsAddr())
	for series, want := range map[string]int{
		`iotguard_crypto_duration_seconds_count{op="ledger_append"}`:                    events,
		`iotguard_crypto_duration_seconds_count{op="verify"}`:                           1 + rounds,
		`iotguard_sessions_granted_total`:                                               rounds,
		`iotguard_coap_requests_total{code="2.01",resource="/join",transport="udp"}`:    1 + rounds,
		`iotguard_coap_requests_total{code="4.01",resource="/join",transport="udp"}`:    0,
		`iotguard_coap_requests_total{code="4.01",resource="/cluster",transport="udp"}`: 0,
		`iotguard_coap_requests_total{code="2.05",resource="/cluster",transport="udp"}`: 1 + 2*rounds,
		`iotguard_coap_dropped_total{reason="association_cap"}`:                         0,
		`iotguard_coap_dropped_total{reason="association_rate"}`:                        0,
		`iotguard_coap_dropped_total{reason="source_rate"}`:                             0,
		`iotguard_coap_dropped_total{reason="not_a_request"}`:                           0,
		`iotguard_ledger_height`:                                                        int(chtest.Height(t, ch)),
		`iotguard_members{status="member"}`:                                             1 + rounds,
		`iotguard_members{status="left"}`:                                               0,
	} {
		if got := scraped[series]; got != want {
			t.Errorf("%s = %d, want %d", series, got, want)
		}
	}
}
