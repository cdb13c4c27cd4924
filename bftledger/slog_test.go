package bftledger_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/bftledger"
)

// TestSlogLoggerLevels: CometBFT's errors stay errors, except those every
// network meets (a peer gone, this node stopping), which are logged lower.
func TestSlogLoggerLevels(t *testing.T) {
	reset := errors.New("write tcp 127.0.0.1:1->127.0.0.1:2: write: connection reset by peer")
	closed := errors.New("read tcp 127.0.0.1:1: use of closed network connection")
	tests := []struct {
		msg   string
		err   error
		level string
	}{
		{"Failed to write PacketMsg", reset, "INFO"},
		{"Stopping peer for error", reset, "INFO"},
		{"Stopping peer for error", closed, "DEBUG"},
		{"Error serving server", closed, "DEBUG"},
		{"Error serving server", reset, "ERROR"},
		{"CONSENSUS FAILURE!!!", reset, "ERROR"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l := bftledger.SlogLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		l.Error(tt.msg, "err", tt.err)
		if !strings.Contains(buf.String(), "level="+tt.level+" ") {
			t.Errorf("%q (%v) logged %q, want level %s", tt.msg, tt.err, buf.String(), tt.level)
		}
	}
}
