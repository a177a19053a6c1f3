//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// childResult is what a child reports on its last line of output.
type childResult struct {
	Msgs  int64 `json:"msgs"`
	Bytes int64 `json:"bytes"`
	Start int64 `json:"start"` // CLOCK_MONOTONIC ns when it started work
	End   int64 `json:"end"`   // CLOCK_MONOTONIC ns when it finished
	CPUNS int64 `json:"cpu_ns,omitempty"`
}

// childParams are what a child was asked to do.
type childParams struct {
	size int
	lim  limits
	// ownsEnd says the child's side is its own (an [ownedTransport]): a
	// producer ends the stream by closing its end when done.
	ownsEnd bool
}

// roles are the child's jobs, by name.
var roles = map[string]func(context.Context, *ends, childParams) (childResult, error){
	"producer": produce,
	"consumer": consume,
	"echo":     echo,
	"idle":     idle,
}

// isChild reports whether this process was started by [spawn].
func isChild() bool { return os.Getenv(childEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "child" }

// childMain runs a child: os.Args are "child ROLE TRANSPORT SIZE MSGS TIME
// FILES" and the link's files are descriptors 3 and on, FILES holding a
// letter for each (see [fileLayout]). It returns the exit code.
func childMain() int {
	if err := runChild(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// runChild opens the link, says it is ready, waits for its stdin to close,
// runs its role and prints the result.
func runChild(args []string) error {
	if len(args) != 6 {
		return fmt.Errorf("want ROLE TRANSPORT SIZE MSGS TIME FILES, got %q", args)
	}
	role, ok := roles[args[0]]
	t, tok := transports[args[1]]
	if !ok || !tok {
		return fmt.Errorf("unknown role %q or transport %q", args[0], args[1])
	}
	var p childParams
	var err1, err2, err3, err4 error
	p.size, err1 = strconv.Atoi(args[2])
	p.lim.msgs, err2 = strconv.Atoi(args[3])
	p.lim.time, err3 = time.ParseDuration(args[4])
	if strings.Trim(args[5], "f-") != "" {
		err4 = fmt.Errorf("bad file layout %q", args[5])
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}

	files := make([]*os.File, len(args[5]))
	for i := range files {
		if args[5][i] == 'f' {
			files[i] = os.NewFile(uintptr(3+i), "link"+strconv.Itoa(i))
		}
	}
	defer closeAll(files)
	e, err := t.open(files)
	if err != nil {
		return err
	}
	defer e.close()
	if isOwned(t) {
		closeAll(files) // the end is open, and must be the only copy
		p.ownsEnd = true
	}

	fmt.Println("ready")
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil { // wait for start
		return err
	}
	res, err := role(context.Background(), e, p)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// produce sends up to p.lim.msgs messages of p.size bytes, for at most
// p.lim.time, in steps of batchSize messages.
func produce(ctx context.Context, e *ends, p childParams) (childResult, error) {
	msg := make([]byte, p.size)
	for i := range msg {
		msg[i] = byte(i)
	}
	res := childResult{Start: mono()}
	deadline := time.Now().Add(p.lim.time)
	for res.Msgs < int64(p.lim.msgs) {
		n := min(batchSize, p.lim.msgs-int(res.Msgs))
		if err := e.out.put(ctx, msg, n); err != nil {
			return res, err
		}
		res.Msgs += int64(n)
		if time.Now().After(deadline) {
			break
		}
	}
	if p.ownsEnd {
		if err := e.out.closeWrite(); err != nil {
			return res, err
		}
	}
	res.End = mono()
	res.Bytes = res.Msgs * int64(p.size)
	return res, nil
}

// consume receives until the stream ends.
func consume(ctx context.Context, e *ends, p childParams) (childResult, error) {
	return receive(ctx, e, nil)
}

// echo answers every message with one of the same size until the stream ends.
func echo(ctx context.Context, e *ends, p childParams) (childResult, error) {
	return receive(ctx, e, make([]byte, p.size))
}

// receive receives until the stream ends, answering each message with
// reply unless reply is nil, and counts what it received.
func receive(ctx context.Context, e *ends, reply []byte) (childResult, error) {
	res := childResult{Start: mono()}
	for {
		n, b, err := e.in.get(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		if reply != nil {
			if err := e.out.put(ctx, reply, n); err != nil {
				return res, err
			}
		}
		res.Msgs += int64(n)
		res.Bytes += int64(b)
	}
	res.End = mono()
	return res, nil
}

// idle blocks in one get on an empty stream until the parent ends it, and
// reports the CPU time the process used meanwhile.
func idle(ctx context.Context, e *ends, p childParams) (childResult, error) {
	before, err := cpuTime()
	if err != nil {
		return childResult{}, err
	}
	res := childResult{Start: mono()}
	n, _, err := e.in.get(ctx)
	if err != io.EOF {
		return res, fmt.Errorf("blocked get returned %d messages, %v; want io.EOF", n, err)
	}
	res.End = mono()
	after, err := cpuTime()
	res.CPUNS = int64(after - before)
	return res, err
}

// cpuTime returns the user plus system CPU time of this process.
func cpuTime() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Cross-process timestamps. Go's monotonic clock readings are relative to
// the start of each process, so a child reports CLOCK_MONOTONIC instead: a
// base read once from the kernel, advanced with time.Since (which is cheap).
var monoBase, monoBaseNS = func() (time.Time, int64) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return time.Now(), ts.Nano()
}()

// mono returns CLOCK_MONOTONIC in nanoseconds, comparable across processes.
func mono() int64 { return monoBaseNS + int64(time.Since(monoBase)) }
