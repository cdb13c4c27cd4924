package coapedge_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/iotguard/iotguard/internal/coapedge"
)

// recorder is an Observer and error hook that keeps what it saw.
type recorder struct {
	mu           sync.Mutex
	requests     []string // "resource code"
	dropped      []string // reasons
	associations int
	errs         []error
}

func (r *recorder) Request(_, resource, code string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, resource+" "+code)
}

func (r *recorder) Dropped(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped = append(r.dropped, reason)
}

func (r *recorder) Associations(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.associations = n
}

// drops returns the drop reasons seen so far and the association count.
func (r *recorder) drops() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dropped...), r.associations
}

func (r *recorder) error(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) seen() ([]string, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...), append([]error(nil), r.errs...)
}

// start runs an edge with /echo (POST 60: answers the body, the source and
// the Accept option, as if the request had authenticated) and /panic (GET:
// panics) on 127.0.0.1, and a client of it.
func start(t *testing.T, opts ...coapedge.Option) (*client.Conn, *recorder) {
	t.Helper()
	srv, rec := listen(t, opts...)
	return dial(t, srv), rec
}

// dial returns a client of srv, closed when the test ends.
func dial(t testing.TB, srv *coapedge.Server) *client.Conn {
	t.Helper()
	c, err := udp.Dial(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs an edge with resources on 127.0.0.1, closed (and checked to
// close cleanly) when the test ends.
func serve(t testing.TB, resources []coapedge.Resource, opts ...coapedge.Option) *coapedge.Server {
	t.Helper()
	srv, err := coapedge.Listen("127.0.0.1:0", resources, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// listen runs the edge of start, with the resources of the reflection tests.
func listen(t *testing.T, opts ...coapedge.Option) (*coapedge.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := serve(t, append([]coapedge.Resource{
		{Path: "/echo", Method: codes.POST, Format: message.AppCBOR, Answers: []message.MediaType{message.TextPlain}, Link: `rt="test.echo"`,
			Handle: func(_ context.Context, r *coapedge.Request) coapedge.Response {
				a, ok := r.Accept()
				body := append(append([]byte(r.Path+" "+r.Source+" "), r.Body...), []byte(" accept ")...)
				if ok {
					body = append(body, a.String()...)
				}
				return coapedge.Response{Code: codes.Content, Format: message.TextPlain, Body: body, Authenticated: true}
			}},
		{Path: "/panic", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response { panic("boom") }},
		{Path: "/held", Method: codes.GET, Handle: func(context.Context, *coapedge.Request) coapedge.Response {
			return coapedge.Response{Code: codes.Valid}
		}},
	}, reflectionResources()...), append([]coapedge.Option{coapedge.WithObserver(rec), coapedge.WithErrors(rec.error), coapedge.WithMaxPayload(64)}, opts...)...)
	return srv, rec
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func read(t *testing.T, c *client.Conn, method codes.Code, path string, cf message.MediaType, body []byte, opts ...message.Option) (codes.Code, string, *client.Conn) {
	t.Helper()
	var req, err = c.NewGetRequest(ctx(t), path, opts...)
	if method != codes.GET {
		req, err = c.NewPostRequest(ctx(t), path, cf, bytes.NewReader(body), opts...)
		req.SetCode(method)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%v %s: %v", method, path, err)
	}
	b, _ := resp.ReadBody()
	return resp.Code(), string(b), c
}

// TestStages: each stage's refusal, with its code and diagnostic, and the
// handler's answer when every check passes.
func TestStages(t *testing.T) {
	c, rec := start(t)
	accept := message.Option{ID: message.Accept, Value: []byte{0}}
	tests := []struct {
		name   string
		method codes.Code
		path   string
		cf     message.MediaType
		body   []byte
		opts   []message.Option
		code   codes.Code
		diag   string
		seen   string
	}{
		{"served", codes.POST, "/echo", message.AppCBOR, []byte("hi"), []message.Option{accept}, codes.Content, "/echo 127.0.0.1:", "/echo 2.05"},
		{"unknown path", codes.GET, "/nothing", 0, nil, nil, codes.NotFound, "no such resource", "other 4.04"},
		{"wrong method", codes.PUT, "/echo", message.AppCBOR, nil, nil, codes.MethodNotAllowed, "method not allowed", "/echo 4.05"},
		{"wrong content-format", codes.POST, "/echo", message.TextPlain, []byte("x"), nil, codes.UnsupportedMediaType,
			"unsupported content-format: want 60", "/echo 4.15"},
		{"unservable accept", codes.POST, "/echo", message.AppCBOR, []byte("x"), []message.Option{{ID: message.Accept, Value: []byte{60}}},
			codes.NotAcceptable, "not acceptable", "/echo 4.06"},
		{"too large", codes.POST, "/echo", message.AppCBOR, bytes.Repeat([]byte{1}, 65), nil, codes.RequestEntityTooLarge, "too large", "/echo 4.13"},
		{"announced too large", codes.POST, "/echo", message.AppCBOR, []byte{1}, []message.Option{{ID: message.Size1, Value: []byte{0x41}}},
			codes.RequestEntityTooLarge, "too large", "/echo 4.13"},
		{"block-wise", codes.POST, "/echo", message.AppCBOR, []byte{1}, []message.Option{{ID: message.Block1, Value: []byte{0x08}}},
			codes.RequestEntityTooLarge, "too large", "/echo 4.13"},
		{"panic", codes.GET, "/panic", 0, nil, nil, codes.InternalServerError, "internal error", "/panic 5.00"},
		{"served after a panic", codes.POST, "/echo", message.AppCBOR, []byte("again"), nil, codes.Content, "/echo 127.0.0.1:", "/echo 2.05"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, diag, _ := read(t, c, tt.method, tt.path, tt.cf, tt.body, tt.opts...)
			if code != tt.code || !strings.HasPrefix(diag, tt.diag) {
				t.Errorf("%v %q, want %v %q…", code, diag, tt.code, tt.diag)
			}
			if seen, _ := rec.seen(); len(seen) != i+1 || seen[i] != tt.seen {
				t.Errorf("observer saw %v, want last %q", seen, tt.seen)
			}
		})
	}
	code, diag, _ := read(t, c, codes.POST, "/echo", message.AppCBOR, []byte("hi"), accept)
	if code != codes.Content || !strings.HasSuffix(diag, " hi accept text/plain; charset=utf-8") {
		t.Errorf("handler saw %q", diag)
	}
	if _, errs := rec.seen(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "handler panic: boom") {
		t.Errorf("error hook got %v, want the panic", errs)
	}
}

// TestSize1 says the limit in the 4.13 answer (RFC 7959 §2.9.3).
func TestSize1(t *testing.T) {
	c, _ := start(t)
	req, err := c.NewPostRequest(ctx(t), "/echo", message.AppCBOR, bytes.NewReader(bytes.Repeat([]byte{1}, 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := resp.GetOptionUint32(message.Size1); resp.Code() != codes.RequestEntityTooLarge || err != nil || n != 64 {
		t.Errorf("%v Size1 %d (%v), want 4.13 Size1 64", resp.Code(), n, err)
	}
}

// TestRateLimit: beyond its burst a source gets 4.29 with Max-Age, counted
// under the resource it asked for; the limit is per source IP.
func TestRateLimit(t *testing.T) {
	c, rec := start(t, coapedge.WithRateLimit(1)) // burst 3
	var limited int
	for range 10 {
		code, diag, _ := read(t, c, codes.POST, "/echo", message.AppCBOR, []byte("x"))
		if code == codes.TooManyRequests {
			limited++
			if diag != "rate limited" {
				t.Errorf("4.29 diagnostic %q", diag)
			}
		}
	}
	if limited < 6 || limited > 7 {
		t.Errorf("%d of 10 requests limited, want 6 or 7 (burst 3, 1/s)", limited)
	}
	seen, _ := rec.seen()
	if n := strings.Count(strings.Join(seen, ","), "/echo 4.29"); n != limited {
		t.Errorf("observer counted %d limited requests, want %d", n, limited)
	}
}

// TestCostlyResourceTakesMore: a request to a resource of Cost n takes n
// tokens of its source's rate limit, one to any other resource a token;
// a cost above the burst takes the burst. Before, every request took one:
// a source could send as many requests that cost the server most as any
// others.
func TestCostlyResourceTakesMore(t *testing.T) {
	ok := func(context.Context, *coapedge.Request) coapedge.Response {
		return coapedge.Response{Code: codes.Changed}
	}
	for _, tc := range []struct {
		cost, want int // want: costly requests served from a full burst of 21 (10/s)
	}{{8, 2}, {21, 1}, {100, 1}} {
		srv := serve(t, []coapedge.Resource{
			{Path: "/costly", Method: codes.POST, Format: message.AppCBOR, Cost: tc.cost, Handle: ok},
			{Path: "/cheap", Method: codes.POST, Format: message.AppCBOR, Handle: ok},
		}, coapedge.WithRateLimit(10)) // burst 21
		c := dial(t, srv)
		served := 0
		for range 5 {
			if code, _, _ := read(t, c, codes.POST, "/costly", message.AppCBOR, []byte("x")); code == codes.Changed {
				served++
			}
		}
		if served != tc.want {
			t.Errorf("cost %d: %d of 5 costly requests served from a burst of 21, want %d", tc.cost, served, tc.want)
		}
		if tc.cost == 8 { // 5 tokens left: cheap requests still go through
			if code, _, _ := read(t, c, codes.POST, "/cheap", message.AppCBOR, []byte("x")); code != codes.Changed {
				t.Errorf("cost 8: a cheap request after the costly ones: %v, want served", code)
			}
		}
	}
}

// TestUndecodablePathIsGuarded: a request whose Uri-Path is not UTF-8 has no
// resource (4.04) and meets the rate limit like any other (go-coap's router
// once handed it to its default handler, past the guard).
func TestUndecodablePathIsGuarded(t *testing.T) {
	c, rec := start(t, coapedge.WithRateLimit(1)) // burst 3
	codesSeen := map[codes.Code]int{}
	for range 10 {
		code, _, _ := read(t, c, codes.GET, "", 0, nil, message.Option{ID: message.URIPath, Value: []byte{0xff}})
		codesSeen[code]++
	}
	if n := codesSeen[codes.TooManyRequests]; n < 6 || n > 7 || codesSeen[codes.NotFound] != 10-n {
		t.Errorf("answers %v, want 3 or 4 × 4.04, then 4.29 (burst 3, 1/s)", codesSeen)
	}
	if seen, _ := rec.seen(); !strings.Contains(strings.Join(seen, ","), "other 4.29") {
		t.Errorf("observer saw %v, want limited requests counted under other", seen)
	}
}

// TestWellKnownCore lists the resources that have link attributes, with
// the Content-Formats they answer in, to a source that verified its address.
func TestWellKnownCore(t *testing.T) {
	c, _ := start(t)
	code, _, _ := read(t, c, codes.GET, "/.well-known/core", 0, nil)
	if code != codes.Unauthorized {
		t.Errorf("an unverified source got %v, want the 4.01 Echo challenge", code)
	}
	code, body := readVerified(t, c, "/.well-known/core")
	if code != codes.Content || body != `</echo>;rt="test.echo";ct=0,</large>;rt="test.large";ct="42 0"` {
		t.Errorf("%v %q", code, body)
	}
}

// TestDeadline: a handler's context ends at the request timeout, unless its
// resource NeverWaits; then it is the request's own, without a deadline.
func TestDeadline(t *testing.T) {
	const timeout = time.Minute
	deadline := func(ctx context.Context, _ *coapedge.Request) coapedge.Response {
		d, ok := ctx.Deadline()
		body := "none"
		if ok {
			body = time.Until(d).Round(time.Minute).String()
		}
		return coapedge.Response{Code: codes.Content, Format: message.TextPlain, Body: []byte(body), Authenticated: true}
	}
	c := dial(t, serve(t, []coapedge.Resource{
		{Path: "/waits", Method: codes.GET, Handle: deadline},
		{Path: "/prompt", Method: codes.GET, NeverWaits: true, Handle: deadline},
	}, coapedge.WithTimeout(timeout)))
	for path, want := range map[string]string{"/waits": timeout.String(), "/prompt": "none"} {
		if code, body, _ := read(t, c, codes.GET, path, 0, nil); code != codes.Content || body != want {
			t.Errorf("GET %s: %v, deadline in %s, want %s", path, code, body, want)
		}
	}
}
