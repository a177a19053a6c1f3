//go:build linux

package mpq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// The tests of this file run queues on small file systems of their own (a
// tmpfs, an ext4 image) and in a small memory cgroup: a queue that does not
// fit must fail the call that makes it, with ErrNoSpace, and never kill a
// process later with SIGBUS.

func init() {
	testutil.Register("full-producer", runFullProducer)
	testutil.Register("cgroup-queues", runCgroupQueues)
}

// fill writes a file in dir until the file system is full, and returns its
// path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for len(buf) >= 512 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			buf = buf[:len(buf)/2]
		}
	}
	return p
}

// checkNoSpace checks that err is ErrNoSpace, also matches ENOSPC, and that
// its message says where, how much, and the fix.
func checkNoSpace(t *testing.T, err error, wants ...string) {
	t.Helper()
	if !errors.Is(err, mpq.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v; want ErrNoSpace matching ENOSPC", err)
	}
	for _, w := range append(wants, "no space") {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestNoSpaceOnCreate(t *testing.T) {
	mnt := testutil.Tmpfs(t, 2<<20)
	for _, tc := range []struct {
		name string
		dir  string
		open func(name string, o *mpq.Options) (*mpq.Queue, error)
	}{
		{"Create", mnt, mpq.Create},
		{"Open", mnt, mpq.Open},
		{"Open in a missing directory", filepath.Join(mnt, "sub", "queues"), mpq.Open},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := tc.open("big", &mpq.Options{Dir: tc.dir, Capacity: 8 << 20})
			if err == nil {
				q.Close()
				t.Fatal("an 8 MiB queue on a 2 MiB tmpfs was made")
			}
			checkNoSpace(t, err, tc.dir, "tmpfs at "+mnt, "8.1 MiB", "free of 2.0 MiB", "smaller Capacity")
			if got := testutil.Names(t, mnt); len(got) != 0 {
				t.Errorf("the failed call left %q behind", got)
			}
		})
	}
	// A queue that fits is made, and what is left is refused.
	q, err := mpq.Create("small", &mpq.Options{Dir: mnt, Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st := q.Stats(); !st.Backed || st.FileSize < 1<<20 {
		t.Errorf("Stats of a new queue: Backed %v, FileSize %d; want true, at least 1 MiB", st.Backed, st.FileSize)
	}
	if _, err := mpq.Create("second", &mpq.Options{Dir: mnt, Capacity: 1 << 20}); err == nil {
		t.Fatal("a second 1 MiB queue fitted in what a 2 MiB tmpfs had left")
	} else {
		checkNoSpace(t, err, "free of 2.0 MiB", "smaller Capacity")
	}
	fs, err := mpq.StatFS(mnt)
	if err != nil || fs.Type != "tmpfs" || fs.Mount != mnt || fs.Size != 2<<20 || fs.Free >= 1<<20 {
		t.Errorf("StatFS(%s) = %+v, %v; want tmpfs mounted there, 2 MiB, under 1 MiB free", mnt, fs, err)
	}
}

// TestFullFileSystem runs a producer process against a queue whose file
// system another file has filled: every Put it makes lands (the file was
// reserved when the queue was made), the queue it then tries to make fails
// with ErrNoSpace, and it exits normally; everything it put arrives intact,
// and a producer and consumer on another queue carry on meanwhile.
func TestFullFileSystem(t *testing.T) {
	testutil.CheckGoroutines(t)
	mnt := testutil.Tmpfs(t, 4<<20)
	q, err := mpq.Create("jobs", &mpq.Options{Dir: mnt, Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	fill(t, mnt)

	// Another queue, elsewhere, with its own producer and consumer.
	otherDir := t.TempDir()
	other, err := mpq.Create("other", &mpq.Options{Dir: otherDir})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	const otherCount = 20000
	out := filepath.Join(t.TempDir(), "got")
	cons := testutil.Start(t, "consumer", namedQueue(otherDir, "other"),
		testutil.Env(envOut+"="+out, fmt.Sprintf("%s=1", envProds)))
	prod := testutil.Start(t, "producer", namedQueue(otherDir, "other"),
		testutil.Env(fmt.Sprintf("%s=%d", envCount, otherCount)))

	const count = 3000 // about 400 KiB of messages: they fit the ring
	p := testutil.Start(t, "full-producer", namedQueue(mnt, "jobs"), testutil.Env(fmt.Sprintf("%s=%d", envCount, count)))
	line := p.Expect("nospace ", 60*time.Second)
	for _, w := range []string{"no space", "Capacity", mnt} {
		if !strings.Contains(line, w) {
			t.Errorf("producer's error %q does not say %q", line, w)
		}
	}
	p.Succeed(30 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	var seq uint32
	for ; ; seq++ {
		m, err := q.Get(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		id, s, err := parseMsg(m)
		if err != nil || id != 0 || s != seq {
			t.Fatalf("message %d: id %d seq %d, %v; want id 0 seq %d intact", seq, id, s, err, seq)
		}
	}
	if seq != count {
		t.Errorf("got %d messages; want the %d put", seq, count)
	}

	prod.Succeed(time.Minute)
	if err := other.Seal(); err != nil {
		t.Fatal(err)
	}
	cons.Succeed(time.Minute)
	if got := consumedCount(t, out); got != otherCount {
		t.Errorf("the other queue's consumer got %d messages; want %d", got, otherCount)
	}
}

// consumedCount is how many messages a consumer recorded in its output file.
func consumedCount(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Size() / 4)
}

// runFullProducer puts MPQ_TEST_COUNT messages into the named queue, then
// tries to make a queue of 8 MiB beside it and says "nospace ERROR" if that
// fails with ErrNoSpace, as it must.
func runFullProducer() error {
	dir, name := os.Getenv(envDir), os.Getenv(envName)
	q, err := mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		return err
	}
	defer q.Close()
	g := newMsgGen(0, 1, q.Stats().MaxMessage, 0)
	var buf []byte
	for i := range testutil.EnvInt(envCount, 0) {
		buf = g.next(buf)
		if err := q.TryPut(buf); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	big, err := mpq.Open(name+"-big", &mpq.Options{Dir: dir, Capacity: 8 << 20})
	if err == nil {
		big.Close()
		return errors.New("made an 8 MiB queue on a full file system")
	}
	if !errors.Is(err, mpq.ErrNoSpace) {
		return fmt.Errorf("making a queue on a full file system: got %v; want ErrNoSpace", err)
	}
	testutil.Say("nospace %v", err)
	return nil
}

// TestNoSpaceDurable: a durable queue on a nearly full ext4 disk fails to be
// made, leaving neither file nor directory; one that fits takes Puts, each
// synced, until it is full, and every one of them is there after reopening.
func TestNoSpaceDurable(t *testing.T) {
	mnt := testutil.Ext4(t, 24<<20)
	filler := fill(t, mnt)
	// Leave about 6 MiB free.
	fi, err := os.Stat(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filler, fi.Size()-6<<20); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "var", "queues")
	_, err = mpq.Open("orders", &mpq.Options{Dir: dir, Durable: true, Capacity: 16 << 20})
	checkNoSpace(t, err, "ext4 at "+mnt, "16.1 MiB", "MiB free of", "smaller Capacity")
	if _, err := os.Stat(filepath.Join(mnt, "var")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused Open left %s/var behind (%v)", mnt, err)
	}

	// SyncNever, then one Sync: a flush per Put on a loop device takes
	// minutes, and what is tested is that every page of the file is there.
	q, err := mpq.Open("orders", &mpq.Options{Dir: dir, Durable: true, Capacity: 2 << 20, Sync: mpq.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	g := newMsgGen(0, 1, q.Stats().MaxMessage, 0)
	var buf []byte
	n := 0
	for ; ; n++ {
		buf = g.next(buf)
		if err := q.TryPut(buf); errors.Is(err, mpq.ErrFull) {
			break
		} else if err != nil {
			t.Fatalf("put %d: %v", n, err)
		}
	}
	if n < 1000 {
		t.Fatalf("a 2 MiB durable queue took %d messages before it was full", n)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q, err = mpq.Open("orders", &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range n {
		m, err := q.TryGet()
		if err != nil {
			t.Fatalf("get %d of %d: %v", i, n, err)
		}
		if _, s, err := parseMsg(m); err != nil || s != uint32(i) {
			t.Fatalf("message %d: seq %d, %v", i, s, err)
		}
	}
}

// punch punches a hole of n bytes at off into the file at path.
func punch(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		t.Fatal(err)
	}
}

// TestSparseQueueFile: a queue file with a hole in it (copied sparse, made
// by an older mpq, a page punched out) is backed again when it is opened,
// or, when its file system is full, refused with ErrNoSpace; Inspect says
// whether it is backed.
func TestSparseQueueFile(t *testing.T) {
	mnt := testutil.Tmpfs(t, 4<<20)
	opts := &mpq.Options{Dir: mnt, Capacity: 1 << 20}
	q, err := mpq.Create("sparse", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Put(context.Background(), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	q.Close()
	path := filepath.Join(mnt, "sparse.mpq")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	hole := fi.Size() - 256<<10 // the last quarter of the ring, where nothing is
	punch(t, path, hole, 256<<10)
	if st, err := mpq.Inspect("sparse", opts); err != nil || st.Backed {
		t.Fatalf("Inspect of a queue with a hole punched: Backed %v, %v; want false", st.Backed, err)
	}

	// Full: refused, and the file is as it was.
	filler := fill(t, mnt)
	if _, err := mpq.Open("sparse", opts); err == nil {
		t.Fatal("opened a sparse queue on a full file system")
	} else {
		// The queue exists: what it lacks, and no advice about Capacity.
		checkNoSpace(t, err, mnt, "256.0 KiB (262144 bytes) of storage that the queue file", "lacks", "make room")
		if strings.Contains(err.Error(), "Capacity") {
			t.Errorf("error %q for an existing queue advises a smaller Capacity", err)
		}
	}
	// Room again: backed at Open, and the message is there.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	q, err = mpq.Open("sparse", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st := q.Stats(); !st.Backed {
		t.Error("Open did not back a sparse queue file")
	}
	if m, err := q.TryGet(); err != nil || string(m) != "kept" {
		t.Errorf("TryGet = %q, %v; want the message put before", m, err)
	}
}

// TestMemoryCgroup: in a memory cgroup of 48 MiB, a queue of 256 MiB in
// memory (a memfd, a tmpfs file) is refused with ErrNoSpace instead of the
// kernel's OOM killer ending the process as it reserves the memory.
func TestMemoryCgroup(t *testing.T) {
	add := testutil.MemoryCgroup(t, 48<<20)
	mnt := testutil.Tmpfs(t, 1<<30)
	c := testutil.Start(t, "cgroup-queues", testutil.Stdin(), testutil.Env(envDir+"="+mnt))
	add(c.Pid())
	c.Send("go")
	for _, what := range []string{"new", "open"} {
		line := c.Expect(what+" ", 60*time.Second)
		for _, w := range []string{"no space", "memory cgroup", "256.1 MiB"} {
			if !strings.Contains(line, w) {
				t.Errorf("%s: error %q does not say %q", what, line, w)
			}
		}
	}
	c.Expect("small ok", 60*time.Second)
	c.Succeed(30 * time.Second)
	if got := testutil.Names(t, mnt); len(got) != 0 {
		t.Errorf("the refused Open left %q behind", got)
	}
}

// runCgroupQueues waits for "go" on its standard input (once the parent has
// moved it into its cgroup), then makes queues of 256 MiB with New and in
// a tmpfs, which must fail with ErrNoSpace, and a small one that must work.
func runCgroupQueues() error {
	if line, err := readLine(os.Stdin); err != nil || line != "go" {
		return fmt.Errorf("waiting for go: %q, %v", line, err)
	}
	try := func(what string, open func() (*mpq.Queue, error)) error {
		q, err := open()
		if err == nil {
			q.Close()
			return fmt.Errorf("%s: made a 256 MiB queue in a 48 MiB memory cgroup", what)
		}
		if !errors.Is(err, mpq.ErrNoSpace) {
			return fmt.Errorf("%s: got %v; want ErrNoSpace", what, err)
		}
		testutil.Say("%s %v", what, err)
		return nil
	}
	big := &mpq.Options{Dir: os.Getenv(envDir), Capacity: 256 << 20}
	if err := try("new", func() (*mpq.Queue, error) { return mpq.New(big) }); err != nil {
		return err
	}
	if err := try("open", func() (*mpq.Queue, error) { return mpq.Open("big", big) }); err != nil {
		return err
	}
	q, err := mpq.New(&mpq.Options{Capacity: 4 << 20})
	if err != nil {
		return err
	}
	defer q.Close()
	if err := q.Put(context.Background(), []byte("x")); err != nil {
		return err
	}
	if m, err := q.TryGet(); err != nil || string(m) != "x" {
		return fmt.Errorf("small queue: got %q, %v", m, err)
	}
	testutil.Say("small ok")
	return nil
}

// readLine reads one line from f, byte by byte (no buffering past it).
func readLine(f *os.File) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return string(b), nil
			}
			b = append(b, one[0])
		}
		if err != nil {
			return string(b), err
		}
	}
}
