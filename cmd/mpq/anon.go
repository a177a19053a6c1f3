package main

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mpq-go/mpq"
)

// anonHelp is what ls, top and stat say of anonymous queues.
const anonHelp = `Anonymous queues (mpq.New, such as a process pool's tasks and results)
have no name and no directory: on Linux they are found open in the
processes this user may inspect (/proc/PID/fd), and listed after the
directory's queues, named @PID:LABEL for their Options.Label, or @PID:fdN
when they have none, where PID is the lowest process ID holding the queue
and N a descriptor of it in that process (@PID:fdN:LABEL if one process
holds two queues of the same label). mpq stat takes either form, with any
PID that holds the queue. Other systems do not show them.`

// anonFD is a descriptor of an anonymous queue in a process.
type anonFD struct{ pid, fd int }

// anonQueue is an anonymous queue found open in running processes.
type anonQueue struct {
	label   string
	holders []anonFD // every descriptor of it found, by PID then descriptor
	name    string   // as ls, top and stat show it: see anonHelp
}

// path is where this process can open the queue: its first descriptor.
func (a *anonQueue) path() string { return fdPath(a.holders[0]) }

func fdPath(h anonFD) string { return "/proc/" + strconv.Itoa(h.pid) + "/fd/" + strconv.Itoa(h.fd) }

// pids are the processes that hold the queue, lowest first.
func (a *anonQueue) pids() []int {
	var out []int
	for _, h := range a.holders {
		if len(out) == 0 || out[len(out)-1] != h.pid {
			out = append(out, h.pid)
		}
	}
	return out
}

// nameAnonymous sorts qs, each with its holders sorted, by lowest PID and
// descriptor and gives each its name.
func nameAnonymous(qs []*anonQueue) {
	for _, q := range qs {
		slices.SortFunc(q.holders, func(a, b anonFD) int { return cmpFD(a, b) })
	}
	slices.SortFunc(qs, func(a, b *anonQueue) int { return cmpFD(a.holders[0], b.holders[0]) })
	count := map[string]int{}
	for _, q := range qs {
		q.name = "@" + strconv.Itoa(q.holders[0].pid) + ":" + q.label
		if q.label == "" {
			q.name += "fd" + strconv.Itoa(q.holders[0].fd)
		}
		count[q.name]++
	}
	for _, q := range qs {
		if count[q.name] > 1 {
			h := q.holders[0]
			q.name = fmt.Sprintf("@%d:fd%d:%s", h.pid, h.fd, q.label)
		}
	}
}

func cmpFD(a, b anonFD) int {
	if a.pid != b.pid {
		return a.pid - b.pid
	}
	return a.fd - b.fd
}

// inspect reads the queue through one of its descriptors. It reports false
// if every process that held it has closed it since it was found.
func (a *anonQueue) inspect() (mpq.Stats, bool, error) {
	var err error
	for _, h := range a.holders {
		var s mpq.Stats
		if s, err = inspectFD(h); !errors.Is(err, fs.ErrNotExist) {
			return s, true, err
		}
	}
	return mpq.Stats{}, false, err
}

// anonRow is an anonymous queue as ls and top list it.
type anonRow struct {
	q     *anonQueue
	stats mpq.Stats
	err   error
}

// anonymousRows finds the anonymous queues and reads each; those closed
// meanwhile are left out.
func anonymousRows() []anonRow {
	var rows []anonRow
	for _, q := range findAnonymous() {
		s, ok, err := q.inspect()
		if ok {
			rows = append(rows, anonRow{q, s, err})
		}
	}
	return rows
}

// anonName matches a NAME that may be an anonymous queue's.
var anonName = regexp.MustCompile(`^@([0-9]+):(.*)$`)

// fdLabel matches the fdN form of an anonymous queue's NAME.
var fdLabel = regexp.MustCompile(`^fd([0-9]+)$`)

// findAnonymousNamed returns the anonymous queue that name (@PID:LABEL,
// @PID:fdN, or a name ls shows) stands for; nil if none, and if name does
// not have an anonymous queue's form. A name that fits more than one is a
// usage error naming each by its descriptor.
func findAnonymousNamed(name string) (*anonQueue, error) {
	m := anonName.FindStringSubmatch(name)
	if m == nil {
		return nil, nil
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil {
		return nil, nil
	}
	rest := m[2]
	var byName, byLabel, byFD []*anonQueue
	for _, q := range findAnonymous() {
		held := false
		for _, h := range q.holders {
			if h.pid == pid {
				held = true
				if fd := fdLabel.FindStringSubmatch(rest); fd != nil && fd[1] == strconv.Itoa(h.fd) {
					byFD = append(byFD, q)
				}
			}
		}
		switch {
		case q.name == name:
			byName = append(byName, q)
		case held && q.label == rest:
			byLabel = append(byLabel, q)
		}
	}
	for _, qs := range [][]*anonQueue{byName, byLabel, byFD} {
		switch len(qs) {
		case 0:
			continue
		case 1:
			return qs[0], nil
		}
		var forms []string
		for _, q := range qs {
			for _, h := range q.holders {
				if h.pid == pid {
					forms = append(forms, fmt.Sprintf("@%d:fd%d", h.pid, h.fd))
					break
				}
			}
		}
		return nil, usage("%s is %d anonymous queues of process %d; name one by its descriptor: %s", name, len(qs), pid, strings.Join(forms, ", "))
	}
	return nil, nil
}

// anonErr is how stat reports an anonymous queue it cannot read.
func anonErr(q *anonQueue, err error) error {
	return fail(exitFailure, "anonymous queue %s (%s) cannot be read (%v); it is not a queue, or a damaged one, and goes when nothing holds it (now %s)", q.name, q.path(), err, q.holdersText())
}

// holdersText is "process 42", or "processes 42, 43": those holding q.
func (a *anonQueue) holdersText() string {
	pids := a.pids()
	if len(pids) == 1 {
		return "process " + strconv.Itoa(pids[0])
	}
	return "processes " + joinInts(pids)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
