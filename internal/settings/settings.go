// Package settings gives every flag of a command two more sources: the
// environment and a TOML file. The flag set is the one definition of each
// setting (its name, type, default and help); a file key and an environment
// variable are derived from the flag's name:
//
//	flag --cluster-id   file key cluster-id   environment IOTGUARD_CLUSTER_ID
//
// Precedence: flag > environment > file > default. Every value, whatever its
// source, is parsed by the flag's own flag.Value, so a setting has one parser.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// EnvPrefix starts the name of every environment variable that sets a flag.
const EnvPrefix = "IOTGUARD_"

// Source says where a setting's effective value came from.
type Source string

// The sources, from the weakest to the strongest.
const (
	Default Source = "default"
	File    Source = "file"
	Env     Source = "env"
	Flag    Source = "flag"
)

// Setting is one flag's effective value and where it came from.
type Setting struct {
	Name   string
	Value  string
	Source Source
	// Origin names the source precisely: the file's path, the environment
	// variable, or "--name".
	Origin string
}

// EnvName returns the environment variable of flag name: IOTGUARD_ and the
// name in upper snake case (cluster-id → IOTGUARD_CLUSTER_ID).
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Apply sets every flag of fs that the command line left unset from the
// environment (through getenv) or, failing that, from the TOML file at path
// ("" for none), and returns the effective settings in name order. An empty
// variable counts as unset. fs must
// already be parsed. skip names flags that only the command line sets (the
// flag naming the file itself).
//
// Errors name the key and the file, or the variable: a file that is missing
// or not TOML, a key that is no flag of fs (ErrUnknownKey), a table or array,
// a value the flag refuses (ErrBadValue).
func Apply(fs *flag.FlagSet, path string, getenv func(string) string, skip ...string) ([]Setting, error) {
	fromFile, err := readFile(fs, path, skip)
	if err != nil {
		return nil, err
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	var out []Setting
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(skip, f.Name) {
			return
		}
		s := Setting{Name: f.Name, Source: Default, Origin: "default"}
		env := EnvName(f.Name)
		fileValue, inFile := fromFile[f.Name]
		switch {
		case onCommandLine[f.Name]:
			s.Source, s.Origin = Flag, "--"+f.Name
		case getenv(env) != "":
			s.Source, s.Origin = Env, env
			if err := f.Value.Set(getenv(env)); err != nil {
				errs = append(errs, fmt.Errorf("%w: environment variable %s=%q: %v", ErrBadValue, env, getenv(env), Explain(f, err)))
			}
		case inFile:
			s.Source, s.Origin = File, path
			if err := f.Value.Set(fileValue); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: key %q = %q: %v", ErrBadValue, path, f.Name, fileValue, Explain(f, err)))
			}
		}
		s.Value = f.Value.String()
		out = append(out, s)
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// readFile reads the TOML file at path into flag name → value text, refusing
// keys that are not flags of fs (or are in skip).
func readFile(fs *flag.FlagSet, path string, skip []string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%w: %s: line %d: %s (the file must be TOML: key = value lines, e.g. listen = \"0.0.0.0:5683\")",
				ErrNotTOML, path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("failed to read config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := map[string]string{}
	for _, k := range keys {
		if fs.Lookup(k) == nil || slices.Contains(skip, k) {
			return nil, fmt.Errorf("%w: %s: key %q (known keys: %s)", ErrUnknownKey, path, k, strings.Join(known(fs, skip), ", "))
		}
		v, err := text(raw[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %q: %v", ErrBadValue, path, k, err)
		}
		out[k] = v
	}
	return out, nil
}

// text renders a TOML scalar as the flag syntax parses it.
func text(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, not a %T", v)
}

// known lists the keys a file may hold.
func known(fs *flag.FlagSet, skip []string) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(skip, f.Name) {
			names = append(names, f.Name)
		}
	})
	return names
}

// Explain returns err, the error of f's Set, or, when it is the flag
// package's bare "parse error" or "value out of range", what f wants
// instead: "want a number of metres, like 1000".
func Explain(f *flag.Flag, err error) error {
	if msg := err.Error(); msg != "parse error" && msg != "value out of range" {
		return err
	}
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	unit, _ := flag.UnquoteUsage(f) // the usage's `name`, else the type's
	var want string
	switch getter.Get().(type) {
	case time.Duration:
		return fmt.Errorf("want a duration, like 90s, 10m or 24h (%w)", err)
	case bool:
		return fmt.Errorf("want true or false (%w)", err)
	case int, int64:
		want = "a whole number"
	case uint, uint64:
		want = "a whole number ≥ 0"
	case float64:
		want = "a number"
	default:
		return err
	}
	switch unit {
	case "int", "uint", "float", "value":
	default:
		want += " of " + unit
	}
	return fmt.Errorf("want %s, like %s (%w)", want, f.DefValue, err)
}
