package clusterhead

import (
	"log/slog"
	"time"
)

// ErrorLog is the CoAP edges' error log of a CH, on the clock now.
func ErrorLog(log *slog.Logger, now func() time.Time) func(error) {
	return newErrorLog(log, now).report
}

// Bounds of the error log.
const (
	ErrorLogBurst = errorLogBurst
	ErrorLogEvery = errorLogEvery
)
