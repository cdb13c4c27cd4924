package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

const configUsage = `Usage: iotguard config print [--config FILE] [serve flags]

Prints the settings 'iotguard serve' would run with, given the same flags,
environment (IOTGUARD_<NAME>) and config file (--config FILE or
IOTGUARD_CONFIG), and where each came from: flag, env, file or default.
Precedence: flag > environment > file > default. An unknown key or a bad
value in the file is an error naming the key and the file, as at start.

Examples:
  iotguard config print
  iotguard config print --config /etc/iotguard/iotguard.toml
  IOTGUARD_CLUSTER_ID=plant-7 iotguard config print --radius 500

Flags (those of serve):
`

func configCmd(args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		args = []string{"print", "--help"} // the group's only subcommand, and the flags it takes
	}
	return dispatch("config", configUsage, args, map[string]func([]string) error{"print": configPrint})
}

func configPrint(args []string) error {
	fs, s := newServeFlags("config print")
	eff, err := s.load(fs, configUsage, args)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SETTING\tVALUE\tFROM")
	for _, st := range eff {
		from := string(st.Source)
		if st.Origin != from && !strings.HasPrefix(st.Origin, "--") {
			from += " " + st.Origin
		}
		fmt.Fprintf(w, "%s\t%q\t%s\n", st.Name, st.Value, from)
	}
	return w.Flush()
}
