//go:build linux

package mpq_test

// Tests of the limits the system puts on a process: open descriptors
// (RLIMIT_NOFILE), address space (RLIMIT_AS), read-only file systems,
// directories without permission, and the 256 process slots of a queue.
// Each refused call must fail with its named error, in a message that says
// how to fix it, and leave nothing behind: no descriptor, goroutine, file,
// or slot, and no message lost from a queue that was there before.
//
// A limit of a process is set in a child (the test binary run again), which
// reports each attempt on its standard output as a JSON line.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("limit-nofile", runLimitNofile)
	testutil.Register("limit-as", runLimitAS)
	testutil.Register("limit-perm", runLimitPerm)
	testutil.Register("limit-slots", runLimitSlots)
}

// Environment of the limit helpers (besides envDir, envName and envFD).
const (
	envLimitCall = "MPQ_TEST_CALL"  // the call to make, a key of limitCalls
	envLimitN    = "MPQ_TEST_SLOTS" // handles limit-slots opens
)

// limitCapacity is the capacity of the small queues of these tests.
const limitCapacity = 64 << 10

// A limitCall is a call the tests make under a limit: it makes a resource
// called name in dir (where the call takes a name) and returns what closes
// it.
type limitCall func(dir, name string) (io.Closer, error)

var limitCalls = map[string]limitCall{
	"Open": func(dir, name string) (io.Closer, error) {
		return mpq.Open(name, &mpq.Options{Dir: dir, Capacity: limitCapacity})
	},
	"OpenDurable": func(dir, name string) (io.Closer, error) {
		return mpq.Open(name, &mpq.Options{Dir: dir, Capacity: limitCapacity, Durable: true})
	},
	// The parent made "existing" (and, for a durable one, closed it: the
	// child, alone, recovers it).
	"OpenExisting": func(dir, _ string) (io.Closer, error) {
		return mpq.Open("existing", &mpq.Options{Dir: dir, NoCreate: true})
	},
	"OpenDurableExisting": func(dir, _ string) (io.Closer, error) {
		return mpq.Open("existing", &mpq.Options{Dir: dir, NoCreate: true})
	},
	"New": func(string, string) (io.Closer, error) {
		return mpq.New(&mpq.Options{Capacity: limitCapacity})
	},
	"Pipe":       pipeCall(false),
	"PipeDuplex": pipeCall(true),
	"Listen": func(dir, name string) (io.Closer, error) {
		return mpq.Listen(name, &mpq.ListenOptions{Dir: dir, Capacity: limitCapacity})
	},
	// The parent listens as "server".
	"Dial": func(dir, _ string) (io.Closer, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return mpq.Dial(ctx, "server", &mpq.DialOptions{Dir: dir})
	},
	// Queues too large for a low RLIMIT_AS.
	"OpenLarge": func(dir, name string) (io.Closer, error) {
		return mpq.Open(name, &mpq.Options{Dir: dir, Capacity: largeCapacity})
	},
	"OpenDurableLarge": func(dir, name string) (io.Closer, error) {
		return mpq.Open(name, &mpq.Options{Dir: dir, Capacity: largeCapacity, Durable: true})
	},
	"NewLarge": func(string, string) (io.Closer, error) {
		return mpq.New(&mpq.Options{Capacity: largeCapacity})
	},
	// In directories the call must make first (and remove if it fails).
	"OpenDeeper": func(dir, name string) (io.Closer, error) {
		sub := filepath.Join(dir, name+"-dir")
		q, err := mpq.Open(name, &mpq.Options{Dir: filepath.Join(sub, "queues"), Capacity: limitCapacity})
		return removing(q, err, sub)
	},
	"ListenDeeper": func(dir, name string) (io.Closer, error) {
		sub := filepath.Join(dir, name+"-dir")
		l, err := mpq.Listen(name, &mpq.ListenOptions{Dir: filepath.Join(sub, "sockets"), Capacity: limitCapacity})
		return removing(l, err, sub)
	},
}

// removing returns c, made by a call that returned err, as a closer that
// also removes dir and all in it.
func removing[C io.Closer](c C, err error, dir string) (io.Closer, error) {
	if err != nil {
		return nil, err
	}
	return closers{c, removeAll(dir)}, nil
}

type removeAll string

func (d removeAll) Close() error { return os.RemoveAll(string(d)) }

func pipeCall(duplex bool) limitCall {
	return func(string, string) (io.Closer, error) {
		a, b, err := mpq.Pipe(duplex)
		if err != nil {
			return nil, err
		}
		return closers{a, b}, nil
	}
}

// closers closes several resources as one.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// limitErrors are the errors an attempt's error is matched against.
var limitErrors = map[string]error{
	"ErrTooManyFiles":     mpq.ErrTooManyFiles,
	"ErrNoMemory":         mpq.ErrNoMemory,
	"ErrReadOnly":         mpq.ErrReadOnly,
	"ErrTooManyProcesses": mpq.ErrTooManyProcesses,
	"ErrPermission":       fs.ErrPermission,
	"EMFILE":              syscall.EMFILE,
	"ENOMEM":              syscall.ENOMEM,
	"EROFS":               syscall.EROFS,
	"EACCES":              syscall.EACCES,
}

// A limitAttempt is what came of one call under a limit.
type limitAttempt struct {
	Call       string
	Free       int      // descriptors free for the call (limit-nofile), or -1
	Err        string   // "" if the call succeeded
	Is         []string // the keys of limitErrors that Err matches
	Panic      string   // the call panicked
	Leaked     []string // descriptors opened by the call and left open (or closed)
	Goroutines int      // goroutines the call left running
	Files      []string // in the directory after the call, if they changed
}

func (a limitAttempt) is(name string) bool { return slices.Contains(a.Is, name) }

// String says what the attempt was, for test failures.
func (a limitAttempt) String() string {
	res := "success"
	if a.Err != "" {
		res = a.Err
	}
	if a.Free < 0 {
		return fmt.Sprintf("%s: %s", a.Call, res)
	}
	return fmt.Sprintf("%s with %d descriptors free: %s", a.Call, a.Free, res)
}

// attempt makes the call named call under limit (which imposes it and
// returns what lifts it) and records what it returned and what it left
// behind: descriptors, goroutines, files in dir. What a successful call
// made is closed (and named queues removed) before that is counted.
func attempt(call, dir, name string, limit func() (func(), error)) (limitAttempt, error) {
	a := limitAttempt{Call: call, Free: -1}
	fn := limitCalls[call]
	if fn == nil {
		return a, fmt.Errorf("no call %q", call)
	}
	files := dirFiles(dir)
	before, err := testutil.OpenFDs()
	if err != nil {
		return a, err
	}
	base := runtime.NumGoroutine()
	lift, err := limit()
	if err != nil {
		return a, err
	}
	c, err := func() (c io.Closer, err error) {
		defer func() {
			if v := recover(); v != nil {
				a.Panic = fmt.Sprint(v)
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return fn(dir, name)
	}()
	lift()
	if err == nil {
		if err := c.Close(); err != nil {
			return a, fmt.Errorf("close what %s made: %w", call, err)
		}
		mpq.Remove(name, &mpq.Options{Dir: dir})
	} else {
		a.Err = err.Error()
		for k, e := range limitErrors {
			if errors.Is(err, e) {
				a.Is = append(a.Is, k)
			}
		}
		slices.Sort(a.Is)
	}
	a.Goroutines = testutil.SettleGoroutines(base)
	after, err := testutil.OpenFDs()
	if err != nil {
		return a, err
	}
	a.Leaked = testutil.FDDiff(before, after)
	if now := dirFiles(dir); !slices.Equal(now, files) {
		a.Files = now
	}
	return a, nil
}

// report writes an attempt for the parent to read with attempts.
func report(a limitAttempt) {
	line, _ := json.Marshal(a)
	testutil.Say("attempt %s", line)
}

// attempts returns the attempts a child reported.
func attempts(t *testing.T, c *testutil.Child) []limitAttempt {
	t.Helper()
	var as []limitAttempt
	for _, l := range c.Lines() {
		data, ok := strings.CutPrefix(l, "attempt ")
		if !ok {
			continue
		}
		var a limitAttempt
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Fatalf("attempt line %q: %v", l, err)
		}
		as = append(as, a)
	}
	if len(as) == 0 {
		t.Fatalf("%v reported no attempts%s", c, c.Diag())
	}
	return as
}

// checkRefused fails the test unless a failed with an error that matches
// each of the names in is (keys of limitErrors) and says each of says,
// and left nothing behind.
func checkRefused(t *testing.T, a limitAttempt, is []string, says ...string) {
	t.Helper()
	if a.Err == "" {
		t.Errorf("%v; want an error", a)
		return
	}
	t.Logf("%v", a)
	if a.Panic != "" {
		t.Errorf("%v: panic", a)
	}
	for _, name := range is {
		if !a.is(name) {
			t.Errorf("%v: matches %v; want %s", a, a.Is, name)
		}
	}
	for _, s := range says {
		if !strings.Contains(a.Err, s) {
			t.Errorf("%v; want it to say %q", a, s)
		}
	}
	checkClean(t, a)
}

// checkClean fails the test if a left something behind.
func checkClean(t *testing.T, a limitAttempt) {
	t.Helper()
	if len(a.Leaked) > 0 {
		t.Errorf("%v: descriptors changed: %v", a, a.Leaked)
	}
	if a.Goroutines > 0 {
		t.Errorf("%v: %d goroutines left running", a, a.Goroutines)
	}
	if a.Files != nil {
		t.Errorf("%v: the directory holds %q after it", a, a.Files)
	}
}

// dirFiles lists the names in dir and below it, but for the lock file of
// each queue file there (.mpq-ID.lock): a lock file left without its
// queue is listed.
func dirFiles(dir string) []string {
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir && !isLockOfQueue(p) {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	return names
}

// noLimit is the limit of a call made as it is.
func noLimit() (func(), error) { return func() {}, nil }

// maxFree bounds the descriptors the child gives a call: every call here
// needs fewer.
const maxFree = 40

// runLimitNofile makes the call named in the environment with 0, 1, 2...
// descriptors free until it succeeds, and reports each attempt.
func runLimitNofile() error {
	call, dir := os.Getenv(envLimitCall), os.Getenv(envDir)
	// The first call opens what the runtime opens once (the poller) and
	// shows that the call works at all.
	a, err := attempt(call, dir, "warm", noLimit)
	if err != nil {
		return err
	}
	if a.Err != "" {
		return fmt.Errorf("%s without a limit: %s", call, a.Err)
	}
	for free := 0; free <= maxFree; free++ {
		a, err := attempt(call, dir, "q", func() (func(), error) { return testutil.Squeeze(free) })
		if err != nil {
			return err
		}
		a.Free = free
		report(a)
		if a.Err == "" || a.Panic != "" {
			break
		}
	}
	return nil
}

// TestLimitNofile starves each call that opens descriptors of them at each
// of its steps: with 0, 1, 2... descriptors free, every attempt but the
// last must fail with ErrTooManyFiles, saying how to raise the limit, and
// leave no descriptor, goroutine or file behind; the last must succeed.
// A queue that was there keeps its messages; a listener that the dials
// failed on has nothing left open of them.
func TestLimitNofile(t *testing.T) {
	for _, call := range []string{"Open", "OpenDurable", "OpenExisting", "OpenDurableExisting", "OpenDeeper", "New", "Pipe", "PipeDuplex", "Listen", "ListenDeeper", "Dial"} {
		t.Run(call, func(t *testing.T) {
			testutil.CheckGoroutines(t)
			dir := filepath.Join(t.TempDir(), "q")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			var want []string // messages of "existing"
			switch call {
			case "OpenExisting", "OpenDurableExisting":
				durable := call == "OpenDurableExisting"
				q, err := mpq.Create("existing", &mpq.Options{Dir: dir, Capacity: limitCapacity, Durable: durable})
				if err != nil {
					t.Fatal(err)
				}
				want = []string{"one", "two", "three"}
				mustPut(t, q, want...)
				if durable {
					q.Close()
				} else {
					defer q.Close()
				}
			case "Dial":
				defer serve(t, dir, "server")()
			}
			c := testutil.Start(t, "limit-nofile", testutil.Env(envLimitCall+"="+call, envDir+"="+dir))
			c.Succeed(60 * time.Second)
			as := attempts(t, c)
			for _, a := range as[:len(as)-1] {
				checkRefused(t, a, []string{"ErrTooManyFiles", "EMFILE"}, "RLIMIT_NOFILE", "ulimit -n")
			}
			last := as[len(as)-1]
			switch {
			case last.Err != "":
				checkRefused(t, last, []string{"ErrTooManyFiles", "EMFILE"}, "RLIMIT_NOFILE", "ulimit -n")
				t.Errorf("%v: want it to succeed at last", last)
			case last.Free == 0:
				t.Errorf("%v; want it to fail without a descriptor", last)
			default:
				checkClean(t, last)
			}
			t.Logf("%s fails with up to %d descriptors free", call, last.Free-1)
			if want != nil {
				checkMessages(t, dir, "existing", want)
			}
		})
	}
}

// serve listens as name in dir and accepts and closes connections until
// the returned function is called. That function fails the test if no
// connection was accepted, or if this process has descriptors open that it
// did not have before the listener.
func serve(t *testing.T, dir, name string) (stop func()) {
	t.Helper()
	before, err := testutil.OpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	l, err := mpq.Listen(name, &mpq.ListenOptions{Dir: dir, Capacity: limitCapacity})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int)
	go func() {
		n := 0
		for {
			c, err := l.Accept(ctx)
			if errors.Is(err, context.Canceled) {
				served <- n
				return
			}
			if err == nil {
				n++
				c.Close()
			}
		}
	}()
	return func() {
		t.Helper()
		cancel()
		if n := <-served; n == 0 {
			t.Errorf("the listener accepted no connection")
		}
		l.Close()
		if after, err := testutil.OpenFDs(); err != nil {
			t.Error(err)
		} else if d := testutil.FDDiff(before, after); len(d) > 0 {
			t.Errorf("the listener's process has other descriptors after the dials: %v", d)
		}
	}
}

// checkMessages fails the test unless the queue name in dir holds exactly
// want.
func checkMessages(t *testing.T, dir, name string, want []string) {
	t.Helper()
	q, err := mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range want {
		if got, err := q.TryGet(); err != nil || string(got) != m {
			t.Fatalf("queue %s: TryGet: got %q, %v; want %q", name, got, err, m)
		}
	}
	if got, err := q.TryGet(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("queue %s: TryGet after the messages: got %q, %v; want ErrEmpty", name, got, err)
	}
}

// largeCapacity is the capacity of the queues too large for the address
// space the limit-as child leaves itself: asHeadroom more than it uses.
const (
	largeCapacity = 256 << 20
	asHeadroom    = 64 << 20
)

// vmSize returns this process's virtual memory size in bytes.
func vmSize() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}

// limitAS sets RLIMIT_AS to what the process uses now and asHeadroom
// more, measured now: a binary built with -race reserves a vast address
// space at start.
func limitAS() (func(), error) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &old); err != nil {
		return nil, err
	}
	size, err := vmSize()
	if err != nil {
		return nil, err
	}
	lim := syscall.Rlimit{Cur: size + asHeadroom, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		return nil, err
	}
	return func() { syscall.Setrlimit(syscall.RLIMIT_AS, &old) }, nil
}

// runLimitAS makes the call named in the environment (each given in a
// comma-separated list) with an address space too small for its mapping.
func runLimitAS() error {
	dir := os.Getenv(envDir)
	for _, call := range strings.Split(os.Getenv(envLimitCall), ",") {
		// Once without the limit, for what the runtime opens once.
		a, err := attempt(call, dir, "warm", noLimit)
		if err != nil {
			return err
		}
		if a.Err != "" {
			return fmt.Errorf("%s without a limit: %s", call, a.Err)
		}
		if a, err = attempt(call, dir, "q", limitAS); err != nil {
			return err
		}
		report(a)
	}
	return nil
}

// TestLimitAddressSpace opens and makes queues whose mapping the address
// space limit (RLIMIT_AS) refuses: each fails with ErrNoMemory, saying
// which limit, and leaves nothing behind; an existing queue refused keeps
// its messages.
func TestLimitAddressSpace(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := filepath.Join(t.TempDir(), "q")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	q, err := mpq.Create("existing", &mpq.Options{Dir: dir, Capacity: largeCapacity})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two"}
	mustPut(t, q, want...)
	q.Close()
	calls := []string{"OpenLarge", "OpenDurableLarge", "NewLarge", "OpenExisting"}
	c := testutil.Start(t, "limit-as", testutil.Env(envLimitCall+"="+strings.Join(calls, ","), envDir+"="+dir))
	c.Succeed(60 * time.Second)
	as := attempts(t, c)
	if len(as) != len(calls) {
		t.Fatalf("%d attempts reported; want %d%s", len(as), len(calls), c.Diag())
	}
	for _, a := range as {
		checkRefused(t, a, []string{"ErrNoMemory", "ENOMEM"}, "RLIMIT_AS", "ulimit -v", "Capacity")
	}
	checkMessages(t, dir, "existing", want)
}

// TestLimitReadOnly makes and opens queues, and listens, on a read-only
// file system: each fails with ErrReadOnly and says to choose another
// directory; an existing queue there keeps its messages.
func TestLimitReadOnly(t *testing.T) {
	testutil.CheckGoroutines(t)
	ro := testutil.ReadOnly(t)
	// A file system on disk, for durable queues, with a queue made before
	// it was made read-only.
	disk := testutil.Ext4(t, 32<<20)
	q, err := mpq.Create("existing", &mpq.Options{Dir: disk, Capacity: limitCapacity})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two"}
	mustPut(t, q, want...)
	q.Close()
	if err := unix.Mount("", disk, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", disk, err)
	}
	tests := []struct {
		call, dir string
	}{
		{"Open", ro},
		{"OpenDeeper", ro},
		{"Listen", ro},
		{"ListenDeeper", ro},
		{"OpenDurable", disk},
		{"OpenExisting", disk},
	}
	for _, tc := range tests {
		a, err := attempt(tc.call, tc.dir, "q", noLimit)
		if err != nil {
			t.Fatal(err)
		}
		checkRefused(t, a, []string{"ErrReadOnly", "EROFS"}, "read-only", "Dir")
	}
	if err := unix.Mount("", disk, "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount %s writable: %v", disk, err)
	}
	checkMessages(t, disk, "existing", want)
}

// runLimitPerm becomes the user MPQ_TEST_UID and makes each call named in
// the environment in the directory there, which that user may not enter.
func runLimitPerm() error {
	dir := os.Getenv(envDir)
	if err := becomeUser(testutil.EnvInt("MPQ_TEST_UID", -1)); err != nil {
		return err
	}
	for _, call := range strings.Split(os.Getenv(envLimitCall), ",") {
		a, err := attempt(call, dir, "q", noLimit)
		if err != nil {
			return err
		}
		report(a)
	}
	return nil
}

// TestLimitPermission makes queues and listens, as another user, in a
// directory of root's closed to others: each call fails with an error
// matching fs.ErrPermission that names the directory and the way out, and
// makes nothing there.
func TestLimitPermission(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("cannot run a process as another user without root; CI runs as root, where this test must run")
		}
		t.Skip("needs root, to run a process as another user (as CI does)")
	}
	testutil.CheckGoroutines(t)
	base, err := os.MkdirTemp("", "mpq-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "q")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	calls := []string{"Open", "OpenDurable", "OpenDeeper", "Listen", "ListenDeeper"}
	c := testutil.Start(t, "limit-perm", testutil.Env(envLimitCall+"="+strings.Join(calls, ","), envDir+"="+dir, "MPQ_TEST_UID=65534"))
	c.Succeed(60 * time.Second)
	as := attempts(t, c)
	if len(as) != len(calls) {
		t.Fatalf("%d attempts reported; want %d%s", len(as), len(calls), c.Diag())
	}
	for _, a := range as {
		checkRefused(t, a, []string{"ErrPermission", "EACCES"}, dir, "uid 65534", "Dir")
	}
	if names := dirFiles(dir); len(names) > 0 {
		t.Errorf("%s holds %q after the refused calls; want nothing", dir, names)
	}
}

// runLimitSlots opens the queue it was given MPQ_TEST_SLOTS times, says
// "attached", then for each line "get" of its standard input gets a
// message through its first handle and says "got MESSAGE", and for each
// "close" closes its last handle and says "closed". It closes them all
// when its standard input ends.
func runLimitSlots() error {
	n := testutil.EnvInt(envLimitN, 0)
	var qs []*mpq.Queue
	defer func() {
		for _, q := range qs {
			q.Close()
		}
	}()
	open := openChildQueue
	if fd := testutil.EnvInt(envFD, -1); fd >= 0 {
		f := os.NewFile(uintptr(fd), "queue")
		defer f.Close()
		open = func() (*mpq.Queue, error) { return mpq.OpenFile(f, nil) }
	}
	for range n {
		q, err := open()
		if err != nil {
			return fmt.Errorf("handle %d: %w", len(qs)+1, err)
		}
		qs = append(qs, q)
	}
	testutil.Say("attached")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "get":
			m, err := qs[0].TryGet()
			if err != nil {
				return err
			}
			testutil.Say("got %s", m)
		case "close":
			if err := qs[len(qs)-1].Close(); err != nil {
				return err
			}
			qs = qs[:len(qs)-1]
			testutil.Say("closed")
		}
	}
	return sc.Err()
}

// TestLimitSlots fills the 256 process slots of a queue, one held here and
// 255 by handles of a child, then opens it once more here: the open fails
// with ErrTooManyProcesses, saying that 256 are attached and what to do,
// and leaves no descriptor or goroutine behind; the queue keeps working
// for the processes attached, and a slot given back is taken by the next
// open.
func TestLimitSlots(t *testing.T) {
	const slots = 256
	for _, kind := range []string{"named", "durable", "anonymous"} {
		t.Run(kind, func(t *testing.T) {
			testutil.CheckGoroutines(t)
			dir := filepath.Join(t.TempDir(), "q")
			opts := &mpq.Options{Dir: dir, Capacity: limitCapacity, Durable: kind == "durable"}
			var q *mpq.Queue
			var child testutil.Option
			var open func() (*mpq.Queue, error) // one more handle, here
			var err error
			if kind == "anonymous" {
				if q, err = mpq.New(&mpq.Options{Capacity: limitCapacity}); err != nil {
					t.Fatal(err)
				}
				child = passQueue(t, q)
				f, err := q.File()
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				open = func() (*mpq.Queue, error) { return mpq.OpenFile(f, nil) }
			} else {
				if q, err = mpq.Open("full", opts); err != nil {
					t.Fatal(err)
				}
				child = namedQueue(dir, "full")
				open = func() (*mpq.Queue, error) { return mpq.Open("full", opts) }
			}
			defer q.Close()
			mustPut(t, q, "before")
			c := testutil.Start(t, "limit-slots", child, testutil.Env(fmt.Sprintf("%s=%d", envLimitN, slots-1)), testutil.Stdin())
			c.Expect("attached", 60*time.Second)

			before, err := testutil.OpenFDs()
			if err != nil {
				t.Fatal(err)
			}
			base := runtime.NumGoroutine()
			extra, err := open()
			if err == nil {
				extra.Close()
				t.Fatalf("handle %d opened; want ErrTooManyProcesses", slots+1)
			}
			t.Logf("handle %d: %v", slots+1, err)
			if !errors.Is(err, mpq.ErrTooManyProcesses) {
				t.Errorf("handle %d: %v; want ErrTooManyProcesses", slots+1, err)
			}
			for _, s := range []string{fmt.Sprint(slots), "close handles"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("handle %d: %v; want it to say %q", slots+1, err, s)
				}
			}
			if n := testutil.SettleGoroutines(base); n > 0 {
				t.Errorf("the refused open left %d goroutines running", n)
			}
			if after, err := testutil.OpenFDs(); err != nil {
				t.Fatal(err)
			} else if d := testutil.FDDiff(before, after); len(d) > 0 {
				t.Errorf("the refused open changed the descriptors: %v", d)
			}
			if kind != "anonymous" {
				if names := dirFiles(dir); !slices.Equal(names, []string{"full.mpq"}) {
					t.Errorf("%s holds %q; want only full.mpq", dir, names)
				}
			}

			// The others keep working: the child gets what was put here.
			c.Send("get")
			if got := c.Expect("got ", 30*time.Second); got != "got before" {
				t.Errorf("the child: %q; want %q", got, "got before")
			}
			mustPut(t, q, "after")
			if got, err := q.TryGet(); err != nil || string(got) != "after" {
				t.Errorf("TryGet: got %q, %v; want %q", got, err, "after")
			}
			// A slot given back is the next open's (which a lock left
			// held by the refused open would stop).
			c.Send("close")
			c.Expect("closed", 30*time.Second)
			done := make(chan error, 1)
			go func() {
				extra, err := open()
				if err == nil {
					err = extra.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("open after the child gave back a slot: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("open after the child gave back a slot still waits after a minute")
			}
			c.CloseStdin()
			c.Succeed(60 * time.Second)
		})
	}
}
