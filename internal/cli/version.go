package cli

import (
	"flag"
	"fmt"
	"runtime/debug"
)

const versionUsage = `Usage: iotguard version

Prints the module version of this binary, the VCS revision it was built from
(with "modified" when the work tree had uncommitted changes) and the Go
version, from the build information Go embeds. 'iotguard --version' is the
same.

Example:
  iotguard version
`

func versionCmd(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := Parse(fs, versionUsage, args); err != nil {
		return err
	}
	fmt.Println(version())
	return nil
}

// version describes the build: "iotguard v1.2.0 (revision 1a2b3c…, 2026-01-02T03:04:05Z) go1.26.0".
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return program + " (no build information)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	build := "no VCS revision"
	if rev != "" {
		build = "revision " + rev + modified
		if at != "" {
			build += ", " + at
		}
	}
	return fmt.Sprintf("%s %s (%s) %s", program, v, build, info.GoVersion)
}
