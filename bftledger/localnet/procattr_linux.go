package localnet

import "syscall"

// childAttr puts a child in a process group of its own, so that the
// terminal's Ctrl-C reaches only the parent, which stops the children in
// order, and has the kernel stop it if the parent dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
