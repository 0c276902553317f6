package redistest

import "syscall"

// childAttr makes the kernel kill a server if the test binary dies without
// running Main's cleanup (a panic, a timeout, a kill).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
