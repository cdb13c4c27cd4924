package bftledger

import (
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// SlogLogger hands CometBFT's log to l, for Options.Logger. CometBFT's info
// level narrates every block, so it goes to debug.
func SlogLogger(l *slog.Logger) cmtlog.Logger { return slogLogger{l} }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Debug(msg string, kv ...any) { s.l.Debug(msg, kv...) }
func (s slogLogger) Info(msg string, kv ...any)  { s.l.Debug(msg, kv...) }
func (s slogLogger) Error(msg string, kv ...any) { s.l.Error(msg, kv...) }
func (s slogLogger) With(kv ...any) cmtlog.Logger {
	return slogLogger{s.l.With(kv...)}
}
