package bftledger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// SlogLogger hands CometBFT's log to l, for Options.Logger. CometBFT's info
// level narrates every block, so it goes to debug; its errors stay errors,
// except the ones a network meets in normal operation (see expected).
func SlogLogger(l *slog.Logger) cmtlog.Logger { return slogLogger{l} }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Debug(msg string, kv ...any) { s.l.Debug(msg, kv...) }
func (s slogLogger) Info(msg string, kv ...any)  { s.l.Debug(msg, kv...) }
func (s slogLogger) Error(msg string, kv ...any) {
	s.l.Log(context.Background(), errorLevel(msg, kv), msg, kv...)
}
func (s slogLogger) With(kv ...any) cmtlog.Logger {
	return slogLogger{s.l.With(kv...)}
}

// expected are the errors CometBFT 0.38 logs for what happens to every
// network, by message: a peer that is down or went away, and a node's own
// shutdown. They are not faults of this node: a peer that stays away shows in
// consensus (slow or no commits), which logs its own errors.
var expected = map[string]slog.Level{
	// A peer went away (its process stopped, the link broke) or cannot be
	// reached yet (it starts later): worth a line, not an error.
	"Stopping peer for error": slog.LevelInfo,
	"Error dialing peer":      slog.LevelInfo,
	"Failed to reconnect to peer. Beginning exponential backoff": slog.LevelInfo,
	"SendTimeout": slog.LevelInfo, // blocksync: a peer did not send a block in time
	// This node stopping: its switch, pool and listeners were already closed.
	"error while stopping peer":                                               slog.LevelDebug,
	"Won't start a peer - switch is not running":                              slog.LevelDebug,
	"Stopped accept routine, as transport is closed":                          slog.LevelDebug,
	"Error stopping pool":                                                     slog.LevelDebug,
	"Error stopping requester":                                                slog.LevelDebug,
	"Error stopped requester":                                                 slog.LevelDebug,
	"Error serving server":                                                    slog.LevelDebug, // only for a closed listener, see errorLevel
	"Failed to reconnect to peer. Giving up":                                  slog.LevelWarn,
	"Connection failed @ recvRoutine":                                         slog.LevelInfo,
	"Connection failed @ sendRoutine":                                         slog.LevelInfo,
	"Failed to write PacketMsg":                                               slog.LevelInfo, // the peer reset the link mid-write; "Stopping peer for error" follows
	"Error stopping connection":                                               slog.LevelDebug,
	"Error starting peer":                                                     slog.LevelInfo,
	"Wanted to reconnect to inbound peer, but self-reported address is wrong": slog.LevelInfo,
}

// errorLevel is the level of a CometBFT error record.
func errorLevel(msg string, kv []any) slog.Level {
	level, ok := expected[msg]
	if !ok {
		return slog.LevelError
	}
	closed := strings.Contains(fmt.Sprint(kv...), "use of closed network connection")
	switch {
	case msg == "Error serving server" && !closed:
		return slog.LevelError // the RPC server failed, not closed
	case msg == "Stopping peer for error" && closed:
		return slog.LevelDebug // this node closed the connection: it is stopping
	}
	return level
}
