package chtest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Scrape reads the integer samples of the metrics server at addr:
// `series{labels}` → value.
func Scrape(t testing.TB, addr string) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			if n, err := strconv.Atoi(line[i+1:]); err == nil {
				out[line[:i]] = n
			}
		}
	}
	return out
}
