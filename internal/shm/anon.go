package shm

import "strings"

// memfdBase is the name of the memfd of an anonymous queue without a label.
const memfdBase = "mpq"

// MemfdName is the name Anonymous gives the memfd of a queue labelled
// label: "mpq", or "mpq:" + label.
func MemfdName(label string) string {
	if label == "" {
		return memfdBase
	}
	return memfdBase + ":" + label
}

// MemfdLabel reports whether link, what readlink gives of a descriptor in
// /proc/PID/fd, is the memfd of an anonymous queue ("/memfd:mpq (deleted)"
// or "/memfd:mpq:LABEL (deleted)"), and returns its label.
func MemfdLabel(link string) (label string, ok bool) {
	name, ok := strings.CutPrefix(link, "/memfd:")
	if !ok {
		return "", false
	}
	if name, ok = strings.CutSuffix(name, " (deleted)"); !ok {
		return "", false
	}
	if name == memfdBase {
		return "", true
	}
	if label, ok = strings.CutPrefix(name, memfdBase+":"); !ok {
		return "", false
	}
	return label, true
}
