// Package cli is the iotguard command tree: its subcommands, their flags and
// help text, exit codes and error messages. It parses flags and calls the
// packages that do the work. Two binaries run it: cmd/iotguard (the default)
// and bftledger/cmd/iotguard-cometbft, which adds the CometBFT ledger and its
// subcommands through [CometBFT].
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
)

// Command is one subcommand: its name, its one-line summary for the command
// list, its usage text (printed after a usage error) and its run function.
// Run returns an error made by [Usagef] for a usage error (exit 2), one
// wrapping [flag.ErrHelp] after printing help (exit 0), any other error
// (printed, exit 1), or nil.
type Command struct {
	Name, Summary, Usage string
	Run                  func(args []string) error
}

func commands(cmt *CometBFT) []Command {
	return append([]Command{
		{"serve", "run a cluster head", serveUsage, func(args []string) error { return serve(args, cmt) }},
		{"device", "act as a device: keygen, join, verify, session, listen, send, leave, rekey, psk", deviceUsage, deviceCmd},
		{"ledger", "inspect the ledger: verify, list, export, backup, restore", ledgerUsage, func(args []string) error { return ledgerCmd(args, cmt) }},
		{"audit", "check a cluster head's transparency log: proof, consistency, watch, verify-export", auditUsage, auditCmd},
		{"revoke", "revoke a device on a running cluster head", revokeUsage, revoke},
		{"enroll", "say which device may join: add, list, remove (running or stopped server)", enrollUsage, enrollCmd},
		{"fleet", "fleet keys and credentials for zero-touch enrollment: keygen, pubkey, issue", fleetUsage, fleetCmd},
		{"rotate-key", "replace the key of a running cluster head", rotateUsage, rotateKey},
		{"status", "show the state of a running cluster head", statusUsage, statusCmd},
		{"config", "print the effective settings of serve and where each came from", configUsage, configCmd},
		{"demo", "run the whole scenario in one process, step by step", demoUsage, demoCmd},
		{"bench", "load a cluster head over loopback UDP: throughput, latency, ratio to a baseline", benchUsage, benchCmd},
	}, cmt.commands()...)
}

const mainUsage = `iotguard — authenticated membership and encrypted M2M for IoT devices

Usage:
  iotguard <command> [flags]

Commands:
%s
Run 'iotguard <command> --help' for a command's flags and examples.
`

// program is the binary's name in help texts: "iotguard", or the name of a
// binary with the CometBFT ledger (CometBFT.Name). Run sets it.
var program = "iotguard"

// commandLine finds the program name where a help text shows a command line.
var commandLine = regexp.MustCompile(`(?m)(^|^Usage: |^  |')iotguard `)

// named returns help text u with the program's name in its command lines.
func named(u string) string {
	if program == "iotguard" {
		return u
	}
	return commandLine.ReplaceAllString(u, "${1}"+program+" ")
}

// usageError makes Run print the command's usage after the message.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Usagef returns a usage error: Run prints it, then the command's usage, and
// exits 2.
func Usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit status without an error message (warnings).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Run runs the command line args (without the program name), writing the
// command list and errors to stderr, and returns the exit status: 0, 1 for a
// failure or a warning, 2 for a usage error. cmt adds the CometBFT ledger and
// its subcommands; the default binary passes nil.
func Run(args []string, stderr io.Writer, cmt *CometBFT) int {
	program = "iotguard"
	if cmt != nil && cmt.Name != "" {
		program = cmt.Name
	}
	var list strings.Builder
	for _, c := range commands(cmt) {
		fmt.Fprintf(&list, "  %-8s %s\n", c.Name, c.Summary)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, named(mainUsage), list.String())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands(cmt) {
		if c.Name != args[0] {
			continue
		}
		err := c.Run(args[1:])
		var ee exitError
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			return int(ee)
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "iotguard: error: %s\n\n%s", ue.msg, named(c.Usage))
			return 2
		default:
			fmt.Fprintf(stderr, "iotguard: error: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "iotguard: error: unknown command %q\n\n"+named(mainUsage), args[0], list.String())
	return 2
}

// Parse parses args into fs, printing usage on --help, and rejects stray
// positional arguments.
func Parse(fs *flag.FlagSet, usage string, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, named(usage))
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

// dispatch runs the subcommand args[0] of the command group (device,
// enroll, …) among subs, or prints the group's usage for --help (or no
// subcommand: a usage error).
func dispatch(group, usage string, args []string, subs map[string]func([]string) error) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(named(usage))
		if len(args) == 0 {
			return usageError{"missing " + group + " subcommand"}
		}
		return nil
	}
	sub := subs[args[0]]
	if sub == nil {
		return usageError{fmt.Sprintf("unknown %s subcommand %q", group, args[0])}
	}
	return sub(args[1:])
}

// Required reports the first empty flag among names.
func Required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return usageError{"--" + n + " is required"}
		}
	}
	return nil
}

// isSet reports whether name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// WaitSignal blocks until the process receives SIGINT or SIGTERM and, if log
// is not nil, logs that it is shutting down.
func WaitSignal(log *slog.Logger) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	if log != nil {
		log.Info("shutting down", "signal", s.String())
	}
}
