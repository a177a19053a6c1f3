package main

import (
	"os"
	"strconv"
	"strings"
)

// procState is the state of process pid as /proc/PID/stat says, with its
// meaning: "T (stopped)", "S (sleeping)"; "" if it cannot be read (gone,
// or in another PID namespace).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	c := s[i+2]
	if name, ok := procStates[c]; ok {
		return string(c) + " (" + name + ")"
	}
	return string(c)
}

// procStates are the meanings of the state letters of proc(5).
var procStates = map[byte]string{
	'R': "running",
	'S': "sleeping",
	'D': "waiting on the disk, uninterruptible",
	'T': "stopped",
	't': "stopped by a debugger",
	'Z': "zombie",
	'X': "dead",
	'I': "idle",
	'P': "parked",
	'W': "paging",
}
