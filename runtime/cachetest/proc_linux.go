package cachetest

import "syscall"

// childAttr makes the kernel kill the server when the test binary exits,
// also without Main (or after a panic, a timeout, a kill).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
