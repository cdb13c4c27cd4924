// Command iotguard runs an IoT-Guard cluster head, plays a device, inspects
// the ledger and runs the demo. It parses flags and calls the packages; the
// logic lives there.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: its usage text and its run function.
type command struct {
	name, summary, usage string
	run                  func(args []string) error
}

func commands() []command {
	return append([]command{
		{"serve", "run a cluster head", serveUsage, serve},
		{"device", "act as a device: keygen, join, verify, session, listen, send, leave", deviceUsage, deviceCmd},
		{"ledger", "inspect the ledger: verify, list", ledgerUsage, ledgerCmd},
		{"revoke", "revoke a device on a running cluster head", revokeUsage, revoke},
		{"demo", "run the whole scenario in one process, step by step", demoUsage, demoCmd},
		{"bench", "load a cluster head over loopback UDP: throughput, latency, ratio to a baseline", benchUsage, benchCmd},
	}, cometBFTCommands()...)
}

const mainUsage = `iotguard — authenticated membership and encrypted M2M for IoT devices

Usage:
  iotguard <command> [flags]

Commands:
%s
Run 'iotguard <command> --help' for a command's flags and examples.
`

// usageError makes main print the command's usage after the message.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries an exit status without an error message (warnings).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	var list strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&list, "  %-8s %s\n", c.name, c.summary)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, mainUsage, list.String())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:])
		var ee exitError
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			return int(ee)
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "iotguard: error: %s\n\n%s", ue.msg, c.usage)
			return 2
		default:
			fmt.Fprintf(stderr, "iotguard: error: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "iotguard: error: unknown command %q\n\n"+mainUsage, args[0], list.String())
	return 2
}

// parse parses args into fs, printing usage on --help, and rejects stray
// positional arguments.
func parse(fs *flag.FlagSet, usage string, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, usage)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// required reports the first empty flag among names.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return usageError{"--" + n + " is required"}
		}
	}
	return nil
}
