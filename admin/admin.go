// Package admin owns the operator's control socket: a Unix socket in the
// data directory (mode 0600 in a 0700 directory, so only the CH's user can
// use it) serving a tiny HTTP API, and the client the CLI uses. It is how an
// operator acts on a running server — revoke a device, enroll and unenroll
// devices and list the enrollments, read its status, take a backup, rotate
// its key, prune old audit records — while bbolt's file lock keeps other
// processes out of the ledger and the grant log.
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
	"syscall"
	"time"

	"github.com/iotguard/iotguard/internal/counting"
	"github.com/iotguard/iotguard/internal/secretfile"
)

// SocketName is the control socket's name inside the data directory.
const SocketName = "admin.sock"

// maxSocketPath is the longest path of a Unix socket (sun_path, Linux).
const maxSocketPath = 107

// Operator is what the control socket serves; a running cluster head
// (clusterhead.CH) implements it.
type Operator interface {
	// Revoke revokes a device and returns the block height holding the event.
	Revoke(ctx context.Context, id, reason string) (height uint64, err error)
	// Status reports the running server's state.
	Status(ctx context.Context) (Status, error)
	// Backup writes a consistent backup archive of the data directory to w
	// while the server keeps serving.
	Backup(ctx context.Context, w io.Writer) error
	// RotateKey replaces the CH key by a new one, recorded on the ledger.
	RotateKey(ctx context.Context) (Rotation, error)
	// Enroller enrolls, unenrolls and lists enrollments (enroll.go).
	Enroller
	// Pruner deletes old audit records (prune.go).
	Pruner
}

// Server serves the control socket.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen creates dir/admin.sock (replacing a stale one) and serves op on it.
// It refuses a dir that group or others may access (secretfile.CheckDir):
// the socket is created with the umask's mode and only then restricted to
// 0600, and the directory is what keeps other users out of that window.
func Listen(dir string, op Operator) (*Server, error) {
	if err := secretfile.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("failed to open admin socket: %w", err)
	}
	path := filepath.Join(dir, SocketName)
	// Linux keeps a socket's path in 108 bytes with its NUL; longer, the
	// bind fails with a bare "invalid argument".
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("failed to open admin socket %s: the path is %d bytes, a Unix socket's is at most %d: use a shorter data directory path", path, len(path), maxSocketPath)
	}
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
		h, err := op.Revoke(req.Context(), id, reason)
		if err != nil {
			refuse(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "height": h})
	})
	handleEnroll(mux, op)
	handlePrune(mux, op)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, req *http.Request) {
		st, err := op.Status(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		cw := &counting.Writer{W: w}
		if err := op.Backup(req.Context(), cw); err != nil {
			if cw.N == 0 {
				// Nothing sent (a CH whose ledger has no online backup):
				// an answer that says why.
				refuse(w, err)
				return
			}
			// The archive may be half sent: abort the response so that the
			// client reads an error, never a short archive that looks whole.
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("POST /rotate-key", func(w http.ResponseWriter, req *http.Request) {
		r, err := op.RotateKey(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		_ = json.NewEncoder(w).Encode(r)
	})
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln) //nolint:errcheck // returns on Close
	return s, nil
}

// Close stops serving and removes the socket.
func (s *Server) Close() error { return s.srv.Close() }

// client returns an HTTP client that reaches the socket of data directory dir.
func client(dir string) *http.Client {
	path := filepath.Join(dir, SocketName)
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
}

// do sends req to the server on dir and returns the response of a 200, or
// an error: ErrNotRunning when nothing listens on the socket, the server's
// message otherwise (wrapping the sentinel a refusal names, refusal.go).
func do(dir string, req *http.Request) (*http.Response, error) {
	resp, err := client(dir).Do(req)
	if err != nil {
		path := filepath.Join(dir, SocketName)
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w on %s (no server answers at %s; start it with `iotguard serve --data %s`)", ErrNotRunning, dir, path, dir)
		}
		return nil, fmt.Errorf("failed to reach the running server at %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, refusal(resp.Header.Get(reasonHeader), strings.TrimSpace(string(body)))
	}
	return resp, nil
}

// Revoke asks the CH running on data directory dir to revoke id.
func Revoke(ctx context.Context, dir, id, reason string) (uint64, error) {
	form := url.Values{"id": {id}, "reason": {reason}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://iotguard/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := do(dir, req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct{ Height uint64 }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&out); err != nil {
		return 0, fmt.Errorf("failed to read revoke answer: %w", err)
	}
	return out.Height, nil
}

// GetStatus asks the CH running on data directory dir for its status.
func GetStatus(ctx context.Context, dir string) (Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://iotguard/status", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := do(dir, req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("failed to read status answer: %w", err)
	}
	return st, nil
}

// RotateKey asks the CH running on data directory dir to rotate its key.
func RotateKey(ctx context.Context, dir string) (Rotation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://iotguard/rotate-key", nil)
	if err != nil {
		return Rotation{}, err
	}
	resp, err := do(dir, req)
	if err != nil {
		return Rotation{}, err
	}
	defer resp.Body.Close()
	var r Rotation
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&r); err != nil {
		return Rotation{}, fmt.Errorf("failed to read rotation answer: %w", err)
	}
	return r, nil
}

// Backup asks the CH running on data directory dir for a backup archive and
// hands its stream to read. A server failure midway makes read's reader fail
// (an unexpected EOF), never end early as if the archive were whole.
func Backup(ctx context.Context, dir string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://iotguard/backup", nil)
	if err != nil {
		return err
	}
	resp, err := do(dir, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return read(resp.Body)
}
