package metrics_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/metrics"
)

// get fetches url with client, as user:password unless user is "", and
// returns the status code and the body.
func get(t *testing.T, client *http.Client, url, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWebConfigBasicAuth: with a web configuration that names users, the
// metrics and the profiles answer 401 to a request without credentials or
// with a wrong password, and serve the right ones.
func TestWebConfigBasicAuth(t *testing.T) {
	cfg := testutil.WebConfig(t, t.TempDir(), "prometheus", "s3cret", false)
	srv, err := metrics.Serve("127.0.0.1:0", metrics.NewRegistry(), metrics.WithWebConfig(cfg), metrics.WithPprof())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String()
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		for _, pw := range []string{"", "wrong"} {
			user := "prometheus"
			if pw == "" {
				user = ""
			}
			if code, _ := get(t, http.DefaultClient, base+path, user, pw); code != http.StatusUnauthorized {
				t.Errorf("GET %s as %q/%q: %d, want 401", path, user, pw, code)
			}
		}
	}
	if code, body := get(t, http.DefaultClient, base+"/metrics", "prometheus", "s3cret"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET /metrics with the credentials: %d %.100q", code, body)
	}
}

// TestWebConfigTLS: with a certificate in the web configuration the
// metrics are served over HTTPS only, to a client that trusts it.
func TestWebConfigTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := testutil.WebConfig(t, dir, "prometheus", "s3cret", true)
	srv, err := metrics.Serve("127.0.0.1:0", metrics.NewRegistry(), metrics.WithWebConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body := get(t, client, "https://"+srv.Addr().String()+"/metrics", "prometheus", "s3cret"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET https://…/metrics: %d %.100q", code, body)
	}
	if code, _ := get(t, http.DefaultClient, "http://"+srv.Addr().String()+"/metrics", "prometheus", "s3cret"); code != http.StatusBadRequest {
		t.Errorf("GET http://…/metrics from a TLS endpoint: %d, want 400", code)
	}
}

// TestWebConfigInvalid: a web configuration that does not parse, or names
// a certificate that is not there, is refused at start with the file's
// name, and nothing listens.
func TestWebConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key":     "basic_auth: {}\n",
		"no such cert":    "tls_server_config:\n  cert_file: " + filepath.Join(dir, "none.pem") + "\n  key_file: " + filepath.Join(dir, "none.key") + "\n",
		"not a yaml file": "{{{",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		srv, err := metrics.Serve("127.0.0.1:0", metrics.NewRegistry(), metrics.WithWebConfig(path))
		if err == nil {
			srv.Close()
			t.Errorf("%s: served", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want the file named", name, err)
		}
	}
	if _, err := metrics.Serve("127.0.0.1:0", metrics.NewRegistry(), metrics.WithWebConfig(filepath.Join(dir, "missing.yml"))); err == nil {
		t.Error("a missing web config: served")
	}
}
