package settings_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotguard/iotguard/internal/settings"
)

func TestEnvName(t *testing.T) {
	for name, want := range map[string]string{"cluster-id": "IOTGUARD_CLUSTER_ID", "listen": "IOTGUARD_LISTEN", "log-level": "IOTGUARD_LOG_LEVEL"} {
		if got := settings.EnvName(name); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestApplyPrecedence sets each of four flags from a different layer and
// checks flag > env > file > default, key by key.
func TestApplyPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("a = \"file\"\nb = \"file\"\nc = \"file\"\nn = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	a, b, c, d := fs.String("a", "def", ""), fs.String("b", "def", ""), fs.String("c", "def", ""), fs.String("d", "def", "")
	n := fs.Int("n", 0, "")
	if err := fs.Parse([]string{"-a", "flag"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"IOTGUARD_A": "env", "IOTGUARD_B": "env"}
	eff, err := settings.Apply(fs, path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if *a != "flag" || *b != "env" || *c != "file" || *d != "def" || *n != 3 {
		t.Fatalf("a=%s b=%s c=%s d=%s n=%d", *a, *b, *c, *d, *n)
	}
	want := map[string]settings.Source{"a": settings.Flag, "b": settings.Env, "c": settings.File, "d": settings.Default, "n": settings.File}
	for _, s := range eff {
		if s.Source != want[s.Name] {
			t.Errorf("%s from %s, want %s", s.Name, s.Source, want[s.Name])
		}
	}
}

func TestApplyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       error
	}{
		{"unknown key", "z = 1\n", settings.ErrUnknownKey},
		{"bad value", "n = \"many\"\n", settings.ErrBadValue},
		{"array", "n = [1]\n", settings.ErrBadValue},
		{"not TOML", "{\"n\": 1}\n", settings.ErrNotTOML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.Int("n", 0, "")
			if _, err := settings.Apply(fs, path, func(string) string { return "" }); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
