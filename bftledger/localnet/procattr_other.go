//go:build !linux

package localnet

import "syscall"

// childAttr leaves a child in the parent's process group: Ctrl-C in a
// terminal reaches every process at once.
func childAttr() *syscall.SysProcAttr { return nil }
