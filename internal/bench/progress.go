package bench

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress shows how far a long operation is. Start begins a phase of total
// steps, Set moves it, Finish ends it. Implementations need not be safe for
// concurrent use: one phase at a time, driven from one goroutine.
type Progress interface {
	Start(what string, total int64)
	Set(done int64)
	Finish()
}

// Steps returns a callback for an operation that reports its steps done
// and in all (ledger verify, export, prune): it shows them on p as what, the
// phase started at the first call with that call's total.
func Steps(p Progress, what string) func(done, total uint64) {
	started := false
	return func(done, total uint64) {
		if !started {
			p.Start(what, int64(total))
			started = true
		}
		p.Set(int64(done))
	}
}

// TerminalProgress returns a progress bar on f when f is a terminal and a
// silent Progress otherwise, so that pipes and log files stay clean.
func TerminalProgress(f *os.File) Progress {
	if !IsTerminal(f) {
		return quiet{}
	}
	return &bar{f: f}
}

type quiet struct{}

func (quiet) Start(string, int64) {}
func (quiet) Set(int64)           {}
func (quiet) Finish()             {}

type bar struct {
	f *os.File
	b *progressbar.ProgressBar
}

func (p *bar) Start(what string, total int64) {
	p.b = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *bar) Set(done int64) {
	if p.b != nil {
		_ = p.b.Set64(done)
	}
}

func (p *bar) Finish() {
	if p.b != nil {
		_ = p.b.Finish()
		p.b = nil
	}
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }
