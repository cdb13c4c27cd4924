// Package admin owns the operator's control socket: a Unix socket in the
// data directory (mode 0600, so only the CH's user can use it) serving a tiny
// HTTP API, and the client the CLI uses. It is how an operator revokes,
// enrolls and unenrolls devices and lists enrollments while the server runs
// (bbolt's file lock keeps other processes out of the ledger).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SocketName is the control socket's name inside the data directory.
const SocketName = "admin.sock"

// Revoker revokes a device and returns the block height holding the event.
type Revoker interface {
	Revoke(ctx context.Context, id, reason string) (height uint64, err error)
}

// Server serves the control socket.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen creates dir/admin.sock (replacing a stale one) and serves r on it,
// and the enrollment API (enroll.go) when r is also an Enroller.
func Listen(dir string, r Revoker) (*Server, error) {
	path := filepath.Join(dir, SocketName)
	_ = os.Remove(path) // a socket left by a killed process
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to open admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to restrict admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, req *http.Request) {
		id, reason := req.FormValue("id"), req.FormValue("reason")
		h, err := r.Revoke(req.Context(), id, reason)
		if err != nil {
			refuse(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "height": h})
	})
	if e, ok := r.(Enroller); ok {
		handleEnroll(mux, e)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln) //nolint:errcheck // returns on Close
	return s, nil
}

// Close stops serving and removes the socket.
func (s *Server) Close() error { return s.srv.Close() }

// ErrNotRunning is returned by the clients when no server answers on the
// control socket of the data directory: none runs there (or it runs without
// a control socket).
var ErrNotRunning = errors.New("no server running on the data directory")

// Revoke asks the CH running on data directory dir to revoke id.
func Revoke(ctx context.Context, dir, id, reason string) (uint64, error) {
	form := url.Values{"id": {id}, "reason": {reason}}
	var out struct{ Height uint64 }
	err := call(ctx, dir, http.MethodPost, "/revoke", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &out)
	return out.Height, err
}

// call sends one request to the control socket of dir and decodes a 200
// answer's JSON into out; any other status is an error with the server's
// text.
func call(ctx context.Context, dir, method, path, contentType string, body io.Reader, out any) error {
	sock := filepath.Join(dir, SocketName)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://iotguard"+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the running server at %s (is `iotguard serve --data %s` running?): %w: %w", sock, dir, ErrNotRunning, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode != http.StatusOK {
		return refusal(resp.Header.Get(reasonHeader), strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("failed to read the answer to %s: %w", path, err)
	}
	return nil
}

// maxAnswer bounds what a client reads of an answer (an enrollment list of
// some ten thousand devices).
const maxAnswer = 16 << 20
