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

	"github.com/iotguard/iotguard/internal/settings"
)

// Command is one subcommand: its name, its one-line summary for the command
// list, its usage text (what --help prints before the flags) and its run
// function. Run returns an error made by [Usagef] for a usage error (exit 2),
// one wrapping [flag.ErrHelp] after printing help (exit 0), any other error
// (printed, exit 1), or nil.
type Command struct {
	Name, Summary, Usage string
	Run                  func(args []string) error
}

func commands(cmt *CometBFT) []Command {
	return append([]Command{
		{"serve", "run a cluster head", serveUsage, func(args []string) error { return serve(args, cmt) }},
		{"device", "act as a device: keygen, pubkey, join, verify, session, listen, send, leave, rekey, psk", deviceUsage, deviceCmd},
		{"ledger", "inspect the ledger: verify, list, export, backup, restore, prune-grants, grant-proof", ledgerUsage, func(args []string) error { return ledgerCmd(args, cmt) }},
		{"audit", "check a cluster head's transparency log: proof, consistency, watch, verify-export", auditUsage, auditCmd},
		{"revoke", "revoke a device on a running cluster head", revokeUsage, revoke},
		{"enroll", "say which device may join: add, list, remove (running or stopped server)", enrollUsage, enrollCmd},
		{"fleet", "fleet keys and credentials for zero-touch enrollment: keygen, pubkey, issue", fleetUsage, fleetCmd},
		{"rotate-key", "replace the key of a running cluster head", rotateUsage, rotateKey},
		{"status", "show the state of a running cluster head", statusUsage, statusCmd},
		{"config", "print the effective settings of serve and where each came from", configUsage, configCmd},
		{"demo", "run the whole scenario in one process, step by step", demoUsage, demoCmd},
		{"bench", "load a cluster head over loopback UDP: throughput, latency, ratio to a baseline", benchUsage, benchCmd},
		{"version", "print the version and the VCS revision this binary was built from", versionUsage, versionCmd},
	}, cmt.commands()...)
}

const mainUsage = `iotguard — authenticated membership and encrypted M2M for IoT devices

Usage:
  iotguard <command> [flags]

Commands:
%s
Run 'iotguard <command> --help' for a command's flags and examples;
'iotguard --version' prints the version.
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

// usageError makes Run print the message and where to find the usage of the
// command it came from.
type usageError struct {
	msg string
	// cmd is that command ("enroll add"); dispatch and Run fill it in.
	cmd string
}

func (e usageError) Error() string { return e.msg }

// Usagef returns a usage error: Run prints it with a hint to the command's
// --help, and exits 2.
func Usagef(format string, a ...any) error { return usageError{msg: fmt.Sprintf(format, a...)} }

// exitError carries an exit status without an error message (warnings).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Run runs the command line args (without the program name) and returns the
// exit status: 0 (help included, on stdout), 1 for a failure or a warning, 2
// for a usage error. Errors, and the command list after no command at all,
// go to stderr. cmt adds the CometBFT ledger and its subcommands; the
// default binary passes nil.
func Run(args []string, stderr io.Writer, cmt *CometBFT) int {
	program = "iotguard"
	if cmt != nil && cmt.Name != "" {
		program = cmt.Name
	}
	cmds := commands(cmt)
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.Name))
	}
	var list strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&list, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	usage := fmt.Sprintf(named(mainUsage), list.String())
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return 2
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Print(usage)
		return 0
	case args[0] == "--version":
		args = []string{"version"}
	}
	for _, c := range cmds {
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
			if ue.cmd == "" {
				ue.cmd = c.Name
			}
			fmt.Fprintf(stderr, "iotguard: error: %s\nRun '%s %s --help' for usage.\n", ue.msg, program, ue.cmd)
			return 2
		default:
			fmt.Fprintf(stderr, "iotguard: error: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "iotguard: error: unknown command %q\nRun '%s --help' for the commands.\n", args[0], program)
	return 2
}

// Parse parses args into fs, printing usage on --help, and rejects stray
// positional arguments.
func Parse(fs *flag.FlagSet, usage string, args []string) error {
	if err := parseFlags(fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseFlags parses args into fs, printing usage and the flags on --help.
func parseFlags(fs *flag.FlagSet, usage string, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, named(usage))
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return usageError{msg: explainFlagError(fs, err).Error()}
	}
	return nil
}

// badValue is the flag package's error for a value a number or duration
// flag refused, which says only "parse error".
var badValue = regexp.MustCompile(`^invalid value (".*") for flag -([^:]+): (parse error|value out of range)$`)

// explainFlagError adds to a bare parse error of fs what its flag wants, as
// the environment and the config file say it (settings.Explain).
func explainFlagError(fs *flag.FlagSet, err error) error {
	m := badValue.FindStringSubmatch(err.Error())
	if m == nil || fs.Lookup(m[2]) == nil {
		return err
	}
	return fmt.Errorf("invalid value %s for flag -%s: %w", m[1], m[2], settings.Explain(fs.Lookup(m[2]), errors.New(m[3])))
}

// parseArg parses args into fs with flags before and after the command's
// one positional argument, which it returns ("" when there is none).
func parseArg(fs *flag.FlagSet, usage string, args []string) (string, error) {
	if err := parseFlags(fs, usage, args); err != nil || fs.NArg() == 0 {
		return "", err
	}
	arg := fs.Arg(0)
	return arg, Parse(fs, usage, fs.Args()[1:])
}

// dispatch runs the subcommand args[0] of the command group (device,
// enroll, …) among subs, or prints the group's usage for --help. A usage
// error names the subcommand, or the group when there is none.
func dispatch(group, usage string, args []string, subs map[string]func([]string) error) error {
	if len(args) == 0 {
		return usageError{msg: "missing " + group + " subcommand", cmd: group}
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Print(named(usage))
		return nil
	}
	sub := subs[args[0]]
	if sub == nil {
		return usageError{msg: fmt.Sprintf("unknown %s subcommand %q", group, args[0]), cmd: group}
	}
	err := sub(args[1:])
	var ue usageError
	if errors.As(err, &ue) && ue.cmd == "" {
		ue.cmd = group + " " + args[0]
		return ue
	}
	return err
}

// Required reports the first empty flag among names.
func Required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return usageError{msg: "--" + n + " is required"}
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
