//go:build !linux

package cachetest

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
