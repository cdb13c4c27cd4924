package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/iotguard/iotguard/internal/clitest"
)

// TestMain lets the test binary double as the iotguard command: testscript
// copies it into $PATH as "iotguard", and a script's "exec iotguard …" runs
// the real CLI (main) in a child process, so background servers get real
// signals and bbolt real file locks.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"iotguard": main})
}

// TestScripts runs testdata/script/*.txtar, with the commands of
// clitest.Cmds besides testscript's built-ins.
func TestScripts(t *testing.T) { clitest.RunScripts(t, nil) }
