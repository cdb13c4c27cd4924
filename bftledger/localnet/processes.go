package localnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/iotguard/iotguard/bftledger"
)

// Process is one node of a local network run as a process of its own: the
// CH of a cluster with its validator ('serve --ledger cometbft'), or a
// validator without a CH ('node').
type Process struct {
	Node    int
	Cluster string   // the CH's cluster; "" for a validator without a CH
	CoAP    string   // the CH's CoAP address; "" without a CH
	Args    []string // the arguments of the iotguard-cometbft program
	Log     string   // the file its output goes to
	PIDFile string   // holds its PID while it runs under StartProcesses
}

// Command is the command line that runs p with program.
func (p *Process) Command(program string) string {
	words := []string{quote(program)}
	for _, a := range p.Args {
		words = append(words, quote(a))
	}
	return strings.Join(words, " ")
}

func quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Processes initializes cfg.Dir if needed (see [Init]) and returns the
// processes that run its network, one per validator, CHs first.
func Processes(cfg Config) ([]*Process, error) {
	ids, err := Init(cfg)
	if err != nil {
		return nil, err
	}
	var ps []*Process
	for i := range cfg.Validators {
		home := bftledger.NodeDir(cfg.Dir, i)
		name := filepath.Join(cfg.Dir, "node"+strconv.Itoa(i))
		p := &Process{Node: i, Log: name + ".log", PIDFile: name + ".pid"}
		if i < len(ids) {
			p.Cluster, p.CoAP = ids[i], "127.0.0.1:"+strconv.Itoa(cfg.CoAPPort+i)
			p.Args = []string{"serve", "--ledger", "cometbft", "--cometbft-home", home, "--data", filepath.Join(cfg.Dir, ids[i]),
				"--cluster-id", ids[i], "--listen", p.CoAP, "--position", cfg.Position.String(),
				"--radius", strconv.FormatFloat(cfg.Radius, 'f', -1, 64)}
		} else {
			p.Args = []string{"node", "--cometbft-home", home}
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// stopTimeout bounds how long Close waits for a process after SIGINT before
// it kills it.
const stopTimeout = 30 * time.Second

// ProcessNet is a local network whose nodes run as child processes.
type ProcessNet struct {
	procs []*child
}

type child struct {
	*Process
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	stopping atomic.Bool   // Close is stopping it: its exit is expected
}

// StartProcesses starts one child process of program (the iotguard-cometbft
// binary) per node of cfg's network, each logging to its Process.Log with
// its PID in its Process.PIDFile, and logs each one's command line and PID
// to cfg.Logger: an operator can stop any of them (kill PID) and start it
// again with that command. A child that exits is logged and its PID file
// removed; the others go on. The children do not get the terminal's SIGINT;
// Close stops them in order.
func StartProcesses(cfg Config, program string) (*ProcessNet, error) {
	ps, err := Processes(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.logger()
	n := &ProcessNet{}
	for _, p := range ps {
		out, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, errors.Join(err, n.Close())
		}
		cmd := exec.Command(program, p.Args...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = childAttr()
		err = cmd.Start()
		out.Close() // the child has its own descriptor
		if err != nil {
			return nil, errors.Join(fmt.Errorf("failed to start node %d: %w", p.Node, err), n.Close())
		}
		c := &child{Process: p, cmd: cmd, done: make(chan struct{})}
		n.procs = append(n.procs, c)
		attrs := []any{"node", p.Node, "pid", cmd.Process.Pid, "log", p.Log, "command", p.Command(program)}
		if p.Cluster != "" {
			attrs = append(attrs, "cluster", p.Cluster, "coap", "coap://"+p.CoAP)
		}
		log.Info("node process running", attrs...)
		go func() {
			err := cmd.Wait()
			os.Remove(p.PIDFile)
			close(c.done)
			if !c.stopping.Load() {
				log.Warn("node process exited", "node", p.Node, "pid", cmd.Process.Pid, "err", err, "restart", p.Command(program))
			}
		}()
		if err := os.WriteFile(p.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
			return nil, errors.Join(err, n.Close())
		}
	}
	return n, nil
}

// Close stops the CHs (each writes its queued audit records while the
// validators still run), then the validators: SIGINT, then SIGKILL after
// stopTimeout. It returns the errors of processes that did not stop
// cleanly; one that had already exited is not an error.
func (n *ProcessNet) Close() error {
	var errs []error
	for _, chs := range []bool{true, false} {
		var group []*child
		for _, c := range n.procs {
			if (c.Cluster != "") == chs {
				group = append(group, c)
			}
		}
		for _, c := range group {
			c.stopping.Store(true)
			select {
			case <-c.done:
				continue
			default:
			}
			if err := c.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
				errs = append(errs, fmt.Errorf("failed to stop node %d: %w", c.Node, err))
			}
		}
		for _, c := range group {
			select {
			case <-c.done:
			case <-time.After(stopTimeout):
				c.cmd.Process.Kill()
				<-c.done
				errs = append(errs, fmt.Errorf("node %d did not stop within %v: killed", c.Node, stopTimeout))
			}
		}
	}
	n.procs = nil
	return errors.Join(errs...)
}
