package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd (a Type=notify unit, contrib/systemd) how the
// server is doing: READY=1 once it serves, WATCHDOG=1 every half watchdog
// interval while healthy() says so, STOPPING=1 when it begins to shut down.
// Outside systemd (no NOTIFY_SOCKET) it does nothing.
type notifier struct {
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
}

// notifyReady sends READY=1 with a status line and starts the watchdog
// pings if the unit has WatchdogSec. healthy must be cheap; a server that
// is not healthy stops pinging, and systemd restarts it when the watchdog
// interval passes.
func notifyReady(log *slog.Logger, status string, healthy func() error) *notifier {
	n := &notifier{log: log, stop: make(chan struct{}), done: make(chan struct{})}
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unusable; not pinging", "err", err)
	}
	if interval <= 0 {
		close(n.done)
		return n
	}
	go func() {
		defer close(n.done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
				if err := healthy(); err != nil {
					n.log.Error("unhealthy: not pinging the systemd watchdog", "err", err)
					continue
				}
				n.send(daemon.SdNotifyWatchdog)
			}
		}
	}()
	return n
}

// stopping ends the watchdog pings and sends STOPPING=1.
func (n *notifier) stopping() {
	close(n.stop)
	<-n.done
	n.send(daemon.SdNotifyStopping)
}

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("failed to notify systemd", "state", state, "err", fmt.Sprint(err))
	}
}
