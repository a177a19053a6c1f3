//go:build !unix

package main

import "io"

// watchReader does nothing where there is no poll(2).
func watchReader(w io.Writer, gone func()) {}
