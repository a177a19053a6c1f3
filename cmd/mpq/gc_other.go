//go:build !linux

package main

import "os"

// orphanLocks does nothing here: queues have no lock files on this system.
func (g *gc) orphanLocks(string, []os.DirEntry) {}
