//go:build !linux

package main

// procState is "" where there is no /proc to read a process's state from.
func procState(pid int) string { return "" }
