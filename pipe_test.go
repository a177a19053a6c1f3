package mpq_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("conn-sender", runConnSender)
	testutil.Register("conn-echo", runConnEcho)
}

const envConnMsgs = "MPQ_TEST_CONN_MSGS"

// passConn hands an end to a child as descriptors 3, 4 and 5 (an absent ring
// is /dev/null, closed again in the child). Call the returned function once
// the child has started: the parent must not keep the socket open.
func passConn(t testing.TB, c *mpq.Conn) (testutil.Option, func()) {
	t.Helper()
	files, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	var pass []*os.File
	var which string
	for i, f := range files {
		if f == nil {
			which += "-"
			if f, err = os.Open(os.DevNull); err != nil {
				t.Fatal(err)
			}
		} else {
			which += strconv.Itoa(i)
		}
		pass = append(pass, f)
	}
	closeAll := func() {
		for _, f := range pass {
			f.Close()
		}
	}
	t.Cleanup(closeAll)
	return testutil.Options(testutil.Files(pass...), testutil.Env("MPQ_TEST_CONN="+which)), closeAll
}

// childConn makes the end a helper process was given.
func childConn() (*mpq.Conn, error) {
	which := os.Getenv("MPQ_TEST_CONN")
	files := make([]*os.File, 3)
	for i := range files {
		f := os.NewFile(uintptr(3+i), "conn")
		defer f.Close()
		if which[i] != '-' {
			files[i] = f
		}
	}
	return mpq.FileConn(files)
}

// runConnSender sends MPQ_TEST_CONN_MSGS numbered messages (message i is i+1
// bytes long, with bigger ones mixed in), says "sent", then waits to be
// killed, or, with MPQ_TEST_CONN_BIG set, starts sending a message far
// larger than the ring and blocks in the middle of it.
func runConnSender() error {
	c, err := childConn()
	if err != nil {
		return err
	}
	ctx := context.Background()
	for i := range testutil.EnvInt(envConnMsgs, 0) {
		if err := c.Send(ctx, connMsg(i)); err != nil {
			return err
		}
	}
	testutil.Say("sent")
	if os.Getenv("MPQ_TEST_CONN_BIG") != "" {
		go func() {
			// The receiver does not read: this blocks with parts sent.
			c.Send(ctx, make([]byte, 32<<20))
		}()
		time.Sleep(200 * time.Millisecond)
		testutil.Say("blocked")
	}
	testutil.BlockForever()
	return nil
}

// runConnEcho sends back every message it receives until EOF, then exits.
func runConnEcho() error {
	c, err := childConn()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	for {
		m, err := c.Recv(ctx)
		if err == io.EOF {
			testutil.Say("eof")
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.Send(ctx, m); err != nil {
			return err
		}
	}
}

// connMsg is test message i: an index and a pattern, some longer than one
// ring record.
func connMsg(i int) []byte {
	n := 8 + i%100
	if i%17 == 5 {
		n = 300<<10 + i // more than a 1 MiB ring's record
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, uint64(i))
	for j := 8; j < n; j++ {
		b[j] = byte(i + j)
	}
	return b
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newPipe(t testing.TB, duplex bool) (*mpq.Conn, *mpq.Conn) {
	t.Helper()
	a, b, err := mpq.Pipe(duplex)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestPipeRoundTripSizes(t *testing.T) {
	testutil.CheckGoroutines(t)
	a, b := newPipe(t, true)
	ctx := ctxT(t, time.Minute)
	sizes := []int{0, 1, 7, 8, 64, 4096, 256<<10 - 2, 256<<10 - 1, 256 << 10, 256<<10 + 1, 3 << 20, 9<<20 + 3}
	for _, dir := range []struct {
		name     string
		from, to *mpq.Conn
	}{{"first to second", a, b}, {"second to first", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				for _, n := range sizes {
					msg := bytes.Repeat([]byte{byte(n)}, n)
					if err := dir.from.Send(ctx, msg); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for _, n := range sizes {
				got, err := dir.to.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv of %d bytes: %v", n, err)
				}
				if want := bytes.Repeat([]byte{byte(n)}, n); !bytes.Equal(got, want) {
					t.Fatalf("got %d bytes; want %d bytes of %d", len(got), n, byte(n))
				}
				if got == nil {
					t.Fatalf("Recv returned nil for a message of %d bytes", n)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPipeOneWay(t *testing.T) {
	r, w := newPipe(t, false)
	ctx := ctxT(t, 10*time.Second)
	if !r.CanRecv() || r.CanSend() || w.CanRecv() || !w.CanSend() {
		t.Fatalf("CanRecv/CanSend: got r %v/%v w %v/%v; want true/false false/true", r.CanRecv(), r.CanSend(), w.CanRecv(), w.CanSend())
	}
	if err := r.Send(ctx, []byte("x")); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("Send on the receiving end: got %v; want ErrWrongDirection", err)
	}
	if err := r.TrySend([]byte("x")); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("TrySend on the receiving end: got %v; want ErrWrongDirection", err)
	}
	if _, err := w.Recv(ctx); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("Recv on the sending end: got %v; want ErrWrongDirection", err)
	}
	if _, err := w.TryRecv(); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("TryRecv on the sending end: got %v; want ErrWrongDirection", err)
	}
	if _, err := w.Poll(ctx); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("Poll on the sending end: got %v; want ErrWrongDirection", err)
	}
	for i := range 5 {
		if err := w.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		got, err := r.Recv(ctx)
		if err != nil || !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("Recv: got %v, %v; want [%d]", got, err, i)
		}
	}
}

func TestPipeEOFAfterClose(t *testing.T) {
	testutil.CheckGoroutines(t)
	a, b := newPipe(t, true)
	ctx := ctxT(t, 10*time.Second)
	for _, m := range []string{"one", "two", "three"} {
		if err := a.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("second Close: got %v; want ErrClosed", err)
	}
	for _, want := range []string{"one", "two", "three"} {
		got, err := b.Recv(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("Recv: got %q, %v; want %q", got, err, want)
		}
	}
	for range 2 {
		if _, err := b.Recv(ctx); err != io.EOF {
			t.Fatalf("Recv after the peer closed: got %v; want io.EOF", err)
		}
	}
	if ok, err := b.Poll(ctx); !ok || err != nil {
		t.Errorf("Poll at EOF: got %v, %v; want true, nil", ok, err)
	}
	if err := b.Send(ctx, []byte("late")); !errors.Is(err, mpq.ErrPeerClosed) {
		t.Errorf("Send to a closed peer: got %v; want ErrPeerClosed", err)
	}
	if _, err := a.Recv(ctx); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("Recv on a closed end: got %v; want ErrClosed", err)
	}
	if err := a.Send(ctx, nil); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("Send on a closed end: got %v; want ErrClosed", err)
	}
	if _, err := a.Files(); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("Files on a closed end: got %v; want ErrClosed", err)
	}
}

func TestPipeLargeMessage(t *testing.T) {
	r, w := newPipe(t, false)
	ctx := ctxT(t, time.Minute)
	msg := make([]byte, 64<<20)
	for i := range msg {
		msg[i] = byte(i * 7 >> 8)
	}
	want := sha256.Sum256(msg)
	errc := make(chan error, 1)
	go func() { errc <- w.Send(ctx, msg) }()
	got, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msg) || sha256.Sum256(got) != want {
		t.Fatalf("got %d bytes with another checksum; want %d bytes", len(got), len(msg))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, mpq.MaxConnMessage+1)
	if err := w.Send(ctx, huge); !errors.Is(err, mpq.ErrTooLarge) {
		t.Errorf("Send of MaxConnMessage+1 bytes: got %v; want ErrTooLarge", err)
	}
	if err := w.TrySend(huge); !errors.Is(err, mpq.ErrTooLarge) {
		t.Errorf("TrySend of MaxConnMessage+1 bytes: got %v; want ErrTooLarge", err)
	}
}

func TestPipeTrySendAllOrNothing(t *testing.T) {
	r, w := newPipe(t, false)
	// 3 MiB never fits a 1 MiB ring at once: TrySend sends none of it.
	if err := w.TrySend(make([]byte, 3<<20)); !errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TrySend of 3 MiB: got %v; want ErrFull", err)
	}
	if _, err := r.TryRecv(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryRecv after a refused TrySend: got %v; want ErrEmpty", err)
	}
	// 600 KiB does, in parts.
	big := bytes.Repeat([]byte("ab"), 300<<10)
	if err := w.TrySend(big); err != nil {
		t.Fatalf("TrySend of 600 KiB: %v", err)
	}
	n := 0
	for err := error(nil); err == nil; n++ {
		err = w.TrySend([]byte("small"))
		if err != nil && !errors.Is(err, mpq.ErrFull) {
			t.Fatal(err)
		}
	}
	got, err := r.TryRecv()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("TryRecv: got %d bytes, %v; want the 600 KiB message", len(got), err)
	}
	for i := 0; i < n-1; i++ {
		if got, err := r.TryRecv(); err != nil || string(got) != "small" {
			t.Fatalf("TryRecv %d of %d: got %q, %v", i, n-1, got, err)
		}
	}
	if _, err := r.TryRecv(); !errors.Is(err, mpq.ErrEmpty) {
		t.Fatalf("TryRecv on empty: got %v; want ErrEmpty", err)
	}
}

func TestPipePollAndCancel(t *testing.T) {
	testutil.CheckGoroutines(t)
	a, b := newPipe(t, true)
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if ok, err := b.Poll(short); ok || err != context.DeadlineExceeded {
		t.Fatalf("Poll on empty: got %v, %v; want false, DeadlineExceeded", ok, err)
	}
	ctx := ctxT(t, 10*time.Second)
	go func() {
		time.Sleep(20 * time.Millisecond)
		a.Send(ctx, []byte("hi"))
	}()
	if ok, err := b.Poll(ctx); !ok || err != nil {
		t.Fatalf("Poll: got %v, %v; want true, nil", ok, err)
	}
	if got, err := b.TryRecv(); err != nil || string(got) != "hi" {
		t.Fatalf("TryRecv after Poll: got %q, %v", got, err)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Recv(cctx)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ccancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Recv with a cancelled context: got %v; want context.Canceled", err)
	}

	// Fill a's direction, then a blocked Send gives up on its deadline.
	for a.TrySend(make([]byte, 1000)) == nil {
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer dcancel()
	if err := a.Send(dctx, make([]byte, 1000)); err != context.DeadlineExceeded {
		t.Fatalf("Send on a full connection: got %v; want DeadlineExceeded", err)
	}
	// A long message cut short by its deadline is dropped by the receiver,
	// and the next message arrives intact.
	if err := a.Send(dctx, make([]byte, 2<<20)); err != context.DeadlineExceeded {
		t.Fatalf("long Send on a full connection: got %v; want DeadlineExceeded", err)
	}
	go func() {
		a.Send(ctx, []byte("after"))
	}()
	for {
		got, err := b.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1000 {
			if string(got) != "after" {
				t.Fatalf("after the drained messages: got %d bytes; want \"after\"", len(got))
			}
			break
		}
	}
}

func TestPipeCloseWakesBlocked(t *testing.T) {
	testutil.CheckGoroutines(t)
	a, _ := newPipe(t, true)
	ctx := ctxT(t, 10*time.Second)
	errc := make(chan error, 2)
	go func() {
		_, err := a.Recv(ctx) // b sends nothing
		errc <- err
	}()
	for a.TrySend(make([]byte, 4000)) == nil { // b reads nothing
	}
	go func() { errc <- a.Send(ctx, make([]byte, 4000)) }()
	time.Sleep(30 * time.Millisecond)
	a.Close()
	for range 2 {
		if err := <-errc; !errors.Is(err, mpq.ErrClosed) {
			t.Errorf("blocked call at Close: got %v; want ErrClosed", err)
		}
	}
}

// Many goroutines send short and long messages at once: each arrives whole.
func TestPipeConcurrentSenders(t *testing.T) {
	testutil.CheckGoroutines(t)
	r, w := newPipe(t, false)
	ctx := ctxT(t, time.Minute)
	const senders, each = 4, 120
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				m := connMsg(s*each + i)
				if err := w.Send(ctx, m); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[int]bool{}
	var rmu sync.Mutex
	var rg sync.WaitGroup
	for range 2 {
		rg.Go(func() {
			var buf []byte
			for {
				rmu.Lock()
				n := len(seen)
				rmu.Unlock()
				if n == senders*each {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				m, err := r.AppendRecv(rctx, buf[:0])
				cancel()
				if err == context.DeadlineExceeded {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				buf = m
				i := int(binary.LittleEndian.Uint64(m))
				if !bytes.Equal(m, connMsg(i)) {
					t.Errorf("message %d damaged (%d bytes)", i, len(m))
				}
				rmu.Lock()
				if seen[i] {
					t.Errorf("message %d received twice", i)
				}
				seen[i] = true
				rmu.Unlock()
			}
		})
	}
	wg.Wait()
	rg.Wait()
	if len(seen) != senders*each {
		t.Fatalf("got %d messages; want %d", len(seen), senders*each)
	}
}

// An end handed to a child process by descriptor works there; when the child
// is killed, the parent receives everything it sent and then io.EOF.
func TestConnPeerKilled(t *testing.T) {
	testutil.CheckGoroutines(t)
	for _, big := range []bool{false, true} {
		t.Run(fmt.Sprintf("mid-message=%v", big), func(t *testing.T) {
			mine, theirs := newPipe(t, true)
			const n = 30 // their parts fit the ring: nobody reads until the child is killed
			env := []string{fmt.Sprintf("%s=%d", envConnMsgs, n)}
			if big {
				env = append(env, "MPQ_TEST_CONN_BIG=1")
			}
			pass, closePass := passConn(t, theirs)
			c := testutil.Start(t, "conn-sender", pass, testutil.Env(env...))
			closePass()
			theirs.Close() // the child's copy is the only one left
			c.Expect("sent", 30*time.Second)
			if big {
				c.Expect("blocked", 30*time.Second)
			}
			c.Kill()
			ctx := ctxT(t, 30*time.Second)
			for i := range n {
				got, err := mine.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv %d: %v", i, err)
				}
				if !bytes.Equal(got, connMsg(i)) {
					t.Fatalf("message %d damaged", i)
				}
			}
			if got, err := mine.Recv(ctx); err != io.EOF {
				t.Fatalf("Recv after the peer was killed: got %d bytes, %v; want io.EOF", len(got), err)
			}
			if err := mine.Send(ctx, []byte("x")); !errors.Is(err, mpq.ErrPeerClosed) {
				t.Fatalf("Send to a killed peer: got %v; want ErrPeerClosed", err)
			}
		})
	}
}

// Round trips with a child process, then EOF reaches the child when the
// parent closes its end.
func TestConnEchoChild(t *testing.T) {
	testutil.CheckGoroutines(t)
	mine, theirs := newPipe(t, true)
	pass, closePass := passConn(t, theirs)
	c := testutil.Start(t, "conn-echo", pass)
	closePass()
	theirs.Close()
	ctx := ctxT(t, time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		m := connMsg(rng.IntN(1000))
		if err := mine.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		got, err := mine.Recv(ctx)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("echo %d: got %d bytes, %v; want %d bytes", i, len(got), err, len(m))
		}
	}
	mine.Close()
	c.Expect("eof", 30*time.Second)
	c.Wait(30 * time.Second)
}

func TestFileConnBadInput(t *testing.T) {
	q, err := mpq.New(&mpq.Options{Capacity: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	qf, err := q.File()
	if err != nil {
		t.Fatal(err)
	}
	defer qf.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock, peer := os.NewFile(uintptr(fds[0]), "s0"), os.NewFile(uintptr(fds[1]), "s1")
	defer sock.Close()
	defer peer.Close()
	dgram, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	dg := os.NewFile(uintptr(dgram), "dgram")
	defer dg.Close()
	reg, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	reg.Write(make([]byte, 8192))
	defer reg.Close()
	named, err := mpq.Create("ring", &mpq.Options{Dir: t.TempDir(), Capacity: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	namedFile, err := named.File()
	if err != nil {
		t.Fatal(err)
	}
	defer namedFile.Close()
	// The rings of connections cannot be resized by whoever holds them.
	if runtime.GOOS == "linux" {
		if err := unix.Ftruncate(int(qf.Fd()), 4096); err != unix.EPERM {
			t.Errorf("shrinking an anonymous queue: got %v; want EPERM", err)
		}
	}

	for _, tc := range []struct {
		name  string
		files []*os.File
		want  error
	}{
		{"no files", nil, mpq.ErrInvalidOptions},
		{"no socket", []*os.File{nil, qf, nil}, mpq.ErrInvalidOptions},
		{"no ring", []*os.File{sock, nil, nil}, mpq.ErrInvalidOptions},
		{"regular file as socket", []*os.File{reg, qf, nil}, mpq.ErrIncompatible},
		{"datagram socket", []*os.File{dg, qf, nil}, mpq.ErrIncompatible},
		{"regular file as ring", []*os.File{sock, reg, nil}, mpq.ErrIncompatible},
		{"named queue as ring (size not sealed)", []*os.File{sock, namedFile, nil}, mpq.ErrIncompatible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mpq.FileConn(tc.files)
			if !errors.Is(err, tc.want) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("got %v; want %v", err, tc.want)
			}
		})
	}
}

// rawConn returns a receiving Conn and the queue it receives from, into
// which a test puts records of its own making. Both close when t ends.
func rawConn(t testing.TB) (*mpq.Queue, *mpq.Conn) {
	t.Helper()
	q, err := mpq.New(&mpq.Options{Capacity: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	qf, err := q.File()
	if err != nil {
		t.Fatal(err)
	}
	defer qf.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock, peer := os.NewFile(uintptr(fds[0]), "s0"), os.NewFile(uintptr(fds[1]), "s1")
	t.Cleanup(func() { peer.Close() })
	c, err := mpq.FileConn([]*os.File{sock, qf, nil})
	sock.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return q, c
}

// Records in a connection's ring that no mpq sender writes give ErrCorrupt,
// and the next good message still arrives.
func TestConnBadFrames(t *testing.T) {
	q, c := rawConn(t)
	begin := func(n uint64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, n)
		return append(b, 1)
	}
	ctx := ctxT(t, 10*time.Second)
	for _, tc := range []struct {
		name string
		recs [][]byte
	}{
		{"empty record", [][]byte{{}}},
		{"unknown kind", [][]byte{{'x', 9}}},
		{"part without a beginning", [][]byte{{'x', 2}}},
		{"end without a beginning", [][]byte{{'x', 3}}},
		{"huge announced length", [][]byte{begin(mpq.MaxConnMessage + 1)}},
		{"short beginning", [][]byte{{1, 2, 3, 1}}},
		{"parts longer than announced", [][]byte{begin(2), {'a', 'b', 'c', 3}}},
		{"parts shorter than announced", [][]byte{begin(5), {'a', 'b', 3}}},
		{"whole message inside a long one", [][]byte{begin(5), {'a', 'b', 2}, {'w', 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range tc.recs {
				if err := q.Put(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Put(ctx, []byte("good\x00")); err != nil {
				t.Fatal(err)
			}
			got, err := c.Recv(ctx)
			if !errors.Is(err, mpq.ErrCorrupt) {
				t.Fatalf("got %q, %v; want ErrCorrupt", got, err)
			}
			for string(got) != "good" {
				if got, err = c.Recv(ctx); err != nil && !errors.Is(err, mpq.ErrCorrupt) {
					t.Fatal(err)
				}
			}
		})
	}
	// An abort drops the open message.
	for _, r := range [][]byte{begin(5), {'a', 'b', 2}, {4}, []byte("next\x00")} {
		q.Put(ctx, r)
	}
	if got, err := c.Recv(ctx); err != nil || string(got) != "next" {
		t.Fatalf("after an abort: got %q, %v; want \"next\"", got, err)
	}
}
