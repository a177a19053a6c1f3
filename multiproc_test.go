package mpq_test

// Tests with several processes on one queue. The processes are this test
// binary run again (see internal/testutil); the roles they play are
// registered below and in death_test.go and blocking_test.go.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestHelperProcess is not a test: it is the entry point of the helper
// processes the other tests start.
func TestHelperProcess(t *testing.T) { testutil.RunHelper(t) }

func init() {
	testutil.Register("producer", runProducer)
	testutil.Register("consumer", runConsumer)
	testutil.Register("drain", runDrain)
	testutil.Register("attach", runAttach)
}

// Environment of the helper processes.
const (
	envDir      = "MPQ_TEST_DIR"   // directory of a named queue
	envName     = "MPQ_TEST_NAME"  // name of a named queue
	envFD       = "MPQ_TEST_FD"    // else: descriptor of the queue file
	envID       = "MPQ_TEST_ID"    // producer id
	envCount    = "MPQ_TEST_COUNT" // messages to put
	envSeed     = "MPQ_TEST_SEED"  // seed of the message generator
	envLarge    = "MPQ_TEST_LARGE" // every this many messages, a large one
	envBatch    = "MPQ_TEST_BATCH" // 1: use PutBatch / GetBatch
	envOut      = "MPQ_TEST_OUT"   // file a consumer writes what it got to
	envProds    = "MPQ_TEST_PRODUCERS"
	envPutAfter = "MPQ_TEST_PUT_AFTER_EOF" // 1: drain tries a Put after io.EOF
)

// namedQueue makes a child open the queue name in dir.
func namedQueue(dir, name string) testutil.Option {
	return testutil.Env(envDir+"="+dir, envName+"="+name)
}

// passQueue makes a child open q through a descriptor of its file, which
// the child receives as descriptor 3.
func passQueue(t testing.TB, q *mpq.Queue) testutil.Option {
	t.Helper()
	f, err := q.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return testutil.Options(testutil.Files(f), testutil.Env(envFD+"=3"))
}

// openChildQueue opens the queue a helper process was given.
func openChildQueue() (*mpq.Queue, error) {
	if s := os.Getenv(envFD); s != "" {
		fd, err := strconv.Atoi(s)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), "queue")
		defer f.Close()
		return mpq.OpenFile(f, nil)
	}
	return mpq.Open(os.Getenv(envName), &mpq.Options{Dir: os.Getenv(envDir), NoCreate: true})
}

// Test messages: producer id and sequence number (little-endian uint32s), a
// CRC-32C of everything else, then a random body.
const msgHeader = 12

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func msgSum(m []byte) uint32 {
	return crc32.Update(crc32.Checksum(m[:8], castagnoli), castagnoli, m[msgHeader:])
}

// appendMsg appends the message (id, seq, body) to dst.
func appendMsg(dst []byte, id, seq uint32, body []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start+8:], msgSum(dst[start:]))
	return dst
}

// parseMsg checks a message's length and checksum and returns its id and
// sequence number.
func parseMsg(m []byte) (id, seq uint32, err error) {
	if len(m) < msgHeader {
		return 0, 0, fmt.Errorf("message of %d bytes: %q", len(m), m)
	}
	id, seq = binary.LittleEndian.Uint32(m), binary.LittleEndian.Uint32(m[4:])
	if got, want := msgSum(m), binary.LittleEndian.Uint32(m[8:]); got != want {
		return id, seq, fmt.Errorf("message (id %d, seq %d, %d bytes) has checksum %#x; want %#x", id, seq, len(m), got, want)
	}
	return id, seq, nil
}

// A msgGen makes the messages of one producer: sequence numbers from 0,
// random total sizes of 12 to 256 bytes, and, if large > 0, every large-th
// message one of half the maximum size up to the maximum (the first of them
// exactly the maximum).
type msgGen struct {
	id, seq uint32
	rng     *rand.Rand
	pool    []byte // random bytes the bodies are cut from
	max     int
	large   int
}

func newMsgGen(id int, seed uint64, maxSize, large int) *msgGen {
	g := &msgGen{id: uint32(id), rng: rand.New(rand.NewPCG(seed, uint64(id))), max: maxSize, large: large}
	poolSize := 4096
	if large > 0 {
		poolSize = maxSize
	}
	g.pool = make([]byte, poolSize)
	for i := 0; i+8 <= len(g.pool); i += 8 {
		binary.LittleEndian.PutUint64(g.pool[i:], g.rng.Uint64())
	}
	return g
}

// next appends the next message to dst[:0].
func (g *msgGen) next(dst []byte) []byte {
	n := msgHeader + g.rng.IntN(256-msgHeader+1)
	if g.large > 0 && int(g.seq)%g.large == g.large-1 {
		n = g.max/2 + g.rng.IntN(g.max-g.max/2+1)
		if int(g.seq) == g.large-1 {
			n = g.max
		}
	}
	body := n - msgHeader
	off := g.rng.IntN(len(g.pool) - body + 1)
	dst = appendMsg(dst[:0], g.id, g.seq, g.pool[off:off+body])
	g.seq++
	return dst
}

// runProducer puts MPQ_TEST_COUNT messages of producer MPQ_TEST_ID.
func runProducer() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	count := testutil.EnvInt(envCount, 0)
	g := newMsgGen(testutil.EnvInt(envID, 0), uint64(testutil.EnvInt(envSeed, 1)), q.Stats().MaxMessage, testutil.EnvInt(envLarge, 0))
	ctx := context.Background()
	if testutil.EnvInt(envBatch, 0) == 0 {
		var buf []byte
		for range count {
			buf = g.next(buf)
			if err := q.Put(ctx, buf); err != nil {
				return fmt.Errorf("put %d: %w", g.seq-1, err)
			}
		}
	} else {
		msgs := make([][]byte, 32)
		for done := 0; done < count; {
			k := min(len(msgs), count-done)
			for i := range k {
				msgs[i] = g.next(msgs[i])
			}
			n, err := q.PutBatch(ctx, msgs[:k])
			if err != nil || n != k {
				return fmt.Errorf("PutBatch of %d at seq %d: put %d, %v", k, done, n, err)
			}
			done += k
		}
	}
	return q.Close()
}

// runConsumer gets messages until io.EOF, checking each one's checksum and
// that each producer's messages come in order, and writes what it got to the
// file MPQ_TEST_OUT: a little-endian uint32 id<<28 | seq per message.
func runConsumer() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	f, err := os.Create(os.Getenv(envOut))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	last := make([]int64, testutil.EnvInt(envProds, 0))
	for i := range last {
		last[i] = -1
	}
	n := 0
	got := func(m []byte) error {
		id, seq, err := parseMsg(m)
		if err != nil {
			return err
		}
		if int(id) >= len(last) || seq >= 1<<28 {
			return fmt.Errorf("message from producer %d, seq %d: no such producer", id, seq)
		}
		if int64(seq) <= last[id] {
			return fmt.Errorf("producer %d: seq %d after %d", id, seq, last[id])
		}
		last[id] = int64(seq)
		n++
		return binary.Write(w, binary.LittleEndian, id<<28|seq)
	}
	ctx := context.Background()
	if testutil.EnvInt(envBatch, 0) == 0 {
		var buf []byte
		for {
			if buf, err = q.AppendGet(ctx, buf[:0]); err != nil {
				break
			}
			if err := got(buf); err != nil {
				return err
			}
		}
	} else {
		var b mpq.Batch
		for {
			if err = q.GetBatch(ctx, &b, 64); err != nil {
				break
			}
			for i := range b.Len() {
				if err := got(b.Message(i)); err != nil {
					return err
				}
			}
		}
	}
	if err != io.EOF {
		return fmt.Errorf("get after %d messages: %v", n, err)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	testutil.Say("done %d", n)
	return q.Close()
}

// runDrain says "waiting", then gets messages until io.EOF, saying
// "m ID SEQ" for each (checking its checksum) and then "eof". With
// MPQ_TEST_PUT_AFTER_EOF=1 it then tries a Put and says "put: ERROR".
func runDrain() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	testutil.Say("waiting")
	for {
		m, err := q.Get(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		id, seq, err := parseMsg(m)
		if err != nil {
			return err
		}
		testutil.Say("m %d %d", id, seq)
	}
	testutil.Say("eof")
	if testutil.EnvInt(envPutAfter, 0) == 1 {
		testutil.Say("put: %v", q.Put(context.Background(), []byte("after EOF")))
	}
	return q.Close()
}

// runAttach opens the queue, says "attached", and then follows orders from
// its standard input: "close" closes the handle (and checks that it is
// closed), end of input exits.
func runAttach() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	testutil.Say("attached")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "close":
			if err := q.Close(); err != nil {
				return err
			}
			if err := q.Put(context.Background(), []byte("x")); !errors.Is(err, mpq.ErrClosed) {
				return fmt.Errorf("Put on a closed handle: %v; want ErrClosed", err)
			}
			if err := q.Close(); !errors.Is(err, mpq.ErrClosed) {
				return fmt.Errorf("second Close: %v; want ErrClosed", err)
			}
			testutil.Say("closed")
		}
	}
	return sc.Err()
}

// drained parses the "m ID SEQ" lines of a drain child.
func drained(t testing.TB, c *testutil.Child) [][2]uint32 {
	t.Helper()
	var got [][2]uint32
	for _, l := range c.Lines() {
		var id, seq uint32
		if _, err := fmt.Sscanf(l, "m %d %d", &id, &seq); err == nil {
			got = append(got, [2]uint32{id, seq})
		}
	}
	return got
}

// putMsgs puts messages seq from..to-1 of producer id into q.
func putMsgs(t testing.TB, q *mpq.Queue, id uint32, from, to int) {
	t.Helper()
	for seq := from; seq < to; seq++ {
		m := appendMsg(nil, id, uint32(seq), []byte(fmt.Sprintf("body %d/%d", id, seq)))
		if err := q.Put(t.Context(), m); err != nil {
			t.Fatalf("Put(%d, %d): %v", id, seq, err)
		}
	}
}

// TestManyProducersConsumers runs 4 producer and 4 consumer processes on one
// queue and checks that every message put is received exactly once, intact,
// and in each producer's order. Half the producers use PutBatch and half the
// consumers GetBatch.
func TestManyProducersConsumers(t *testing.T) {
	testutil.CheckGoroutines(t)
	const producers, consumers = 4, 4
	// 250,000 messages per producer take under a second on 2 cores, and a
	// few seconds under the race detector (which does not instrument the
	// shared mapping, but slows the Go code of every process several
	// times), so the full count runs in both. -short puts 25,000.
	perProducer := 250_000
	if testing.Short() {
		perProducer = 25_000
	}
	large := perProducer / 10 // ten large messages per producer
	dir := t.TempDir()
	q, err := mpq.Create("stress", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	seed := time.Now().UnixNano()
	t.Logf("%d producers x %d messages, %d consumers, seed %d", producers, perProducer, consumers, seed)

	start := time.Now()
	var cons, prods []*testutil.Child
	for i := range consumers {
		cons = append(cons, testutil.Start(t, "consumer", namedQueue(dir, "stress"), testutil.Env(
			fmt.Sprintf("%s=%s", envOut, filepath.Join(dir, fmt.Sprintf("got%d", i))),
			fmt.Sprintf("%s=%d", envProds, producers),
			fmt.Sprintf("%s=%d", envBatch, i%2))))
	}
	for i := range producers {
		prods = append(prods, testutil.Start(t, "producer", namedQueue(dir, "stress"), testutil.Env(
			fmt.Sprintf("%s=%d", envID, i),
			fmt.Sprintf("%s=%d", envCount, perProducer),
			fmt.Sprintf("%s=%d", envSeed, seed),
			fmt.Sprintf("%s=%d", envLarge, large),
			fmt.Sprintf("%s=%d", envBatch, i%2))))
	}
	for _, p := range prods {
		p.Succeed(5 * time.Minute)
	}
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cons {
		c.Succeed(time.Minute)
	}
	elapsed := time.Since(start)
	total := producers * perProducer
	t.Logf("%d messages through %d+%d processes in %v (%.0f msgs/s)", total, producers, consumers, elapsed, float64(total)/elapsed.Seconds())

	seen := make([][]uint8, producers)
	for i := range seen {
		seen[i] = make([]uint8, perProducer)
	}
	var problems []string
	for i := range consumers {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("got%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(data)%4 != 0 {
			t.Fatalf("consumer %d wrote %d bytes, not a multiple of 4", i, len(data))
		}
		for off := 0; off < len(data); off += 4 {
			v := binary.LittleEndian.Uint32(data[off:])
			id, seq := v>>28, v&(1<<28-1)
			if int(id) >= producers || int(seq) >= perProducer {
				problems = append(problems, fmt.Sprintf("consumer %d got (%d, %d), never put", i, id, seq))
				continue
			}
			if seen[id][seq]++; seen[id][seq] == 2 {
				problems = append(problems, fmt.Sprintf("(%d, %d) received twice", id, seq))
			}
		}
	}
	missing := 0
	for id := range seen {
		for seq, n := range seen[id] {
			if n == 0 {
				if missing < 10 {
					problems = append(problems, fmt.Sprintf("(%d, %d) never received", id, seq))
				}
				missing++
			}
		}
	}
	if missing > 0 || len(problems) > 0 {
		if len(problems) > 20 {
			problems = problems[:20]
		}
		t.Errorf("%d messages missing; problems:\n%s", missing, strings.Join(problems, "\n"))
	}
	s := q.Stats()
	if s.Puts != uint64(total) || s.Gets != uint64(total) || s.Len != 0 || !s.Sealed {
		t.Errorf("stats after the run: %v (Puts %d, Gets %d); want %d puts, %d gets, empty and sealed", s, s.Puts, s.Gets, total, total)
	}
}

// TestSealAcrossProcesses seals an anonymous queue holding messages: Put
// fails with ErrSealed in every process, and a consumer in another process
// receives every message, in order, and then io.EOF.
func TestSealAcrossProcesses(t *testing.T) {
	testutil.CheckGoroutines(t)
	q, err := mpq.New(&mpq.Options{Capacity: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 100
	putMsgs(t, q, 0, 0, n)
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	msg := appendMsg(nil, 0, n, nil)
	if err := q.Put(t.Context(), msg); !errors.Is(err, mpq.ErrSealed) {
		t.Errorf("Put after Seal: %v; want ErrSealed", err)
	}
	if err := q.TryPut(msg); !errors.Is(err, mpq.ErrSealed) {
		t.Errorf("TryPut after Seal: %v; want ErrSealed", err)
	}
	if k, err := q.PutBatch(t.Context(), [][]byte{msg, msg}); k != 0 || !errors.Is(err, mpq.ErrSealed) {
		t.Errorf("PutBatch after Seal: %d, %v; want 0, ErrSealed", k, err)
	}
	if err := q.Seal(); err != nil {
		t.Errorf("second Seal: %v", err)
	}
	if s := q.Stats(); !s.Sealed || s.Len != n {
		t.Errorf("stats after Seal: %v; want sealed with %d messages", s, n)
	}

	c := testutil.Start(t, "drain", passQueue(t, q), testutil.Env(envPutAfter+"=1"))
	c.Succeed(30 * time.Second)
	got := drained(t, c)
	want := make([][2]uint32, n)
	for i := range want {
		want[i] = [2]uint32{0, uint32(i)}
	}
	if !slices.Equal(got, want) {
		t.Errorf("consumer process got %v; want %v", got, want)
	}
	lines := c.Lines()
	if tail := lines[len(lines)-2:]; tail[0] != "eof" || tail[1] != "put: "+mpq.ErrSealed.Error() {
		t.Errorf("consumer process ended with %q; want eof, then Put failing with %q", tail, mpq.ErrSealed)
	}
	if _, err := q.Get(t.Context()); err != io.EOF {
		t.Errorf("Get on the drained sealed queue: %v; want io.EOF", err)
	}
	if _, err := q.TryGet(); err != io.EOF {
		t.Errorf("TryGet on the drained sealed queue: %v; want io.EOF", err)
	}
}

// TestCloseAcrossProcesses checks that closing a handle, in this process or
// another, disturbs nobody else, and that Stats().Procs lists exactly the
// attached handles: a closed handle, a process that exited and a killed one
// drop out.
func TestCloseAcrossProcesses(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	q1, err := mpq.Create("close", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q2, err := mpq.Open("close", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	a := testutil.Start(t, "attach", namedQueue(dir, "close"), testutil.Stdin())
	k := testutil.Start(t, "attach", namedQueue(dir, "close"), testutil.Stdin())
	g := testutil.Start(t, "drain", namedQueue(dir, "close"))
	a.Expect("attached", 30*time.Second)
	k.Expect("attached", 30*time.Second)
	g.Expect("waiting", 30*time.Second)

	me := os.Getpid()
	// procs waits until q2's Stats().Procs lists exactly these PIDs.
	procs := func(what string, want ...int) []mpq.Attached {
		t.Helper()
		slices.Sort(want)
		var got []int
		var ps []mpq.Attached
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			ps = q2.Stats().Procs
			got = got[:0]
			for _, p := range ps {
				got = append(got, p.PID)
			}
			slices.Sort(got)
			if slices.Equal(got, want) || time.Now().After(deadline) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: Procs lists PIDs %v; want %v", what, got, want)
		}
		return ps
	}
	ps := procs("all attached", me, me, a.Pid(), k.Pid(), g.Pid())
	slots := map[int]bool{}
	for _, p := range ps {
		slots[p.Slot] = true
	}
	if len(slots) != len(ps) {
		t.Errorf("Procs %+v: two share a slot", ps)
	}

	// Close q1 while one of its goroutines is blocked in Get.
	errc := make(chan error, 1)
	go func() {
		_, err := q1.Get(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Get on an empty queue returned %v without waiting", err)
	default:
	}
	if err := q1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, mpq.ErrClosed) {
			t.Errorf("Get blocked during Close returned %v; want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get blocked during Close did not return")
	}
	if err := q1.Close(); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("second Close: %v; want ErrClosed", err)
	}
	if err := q1.Put(t.Context(), []byte("x")); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("Put on a closed handle: %v; want ErrClosed", err)
	}
	if _, err := q1.TryGet(); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("TryGet on a closed handle: %v; want ErrClosed", err)
	}
	procs("after closing one of this process's handles", me, a.Pid(), k.Pid(), g.Pid())

	// The other handle and the other processes go on.
	putMsgs(t, q2, 0, 0, 1)
	g.Expect("m 0 0", 10*time.Second)

	// A handle closed in another process, which stays alive.
	a.Send("close")
	a.Expect("closed", 10*time.Second)
	procs("after another process closed its handle", me, k.Pid(), g.Pid())
	a.CloseStdin()
	a.Succeed(10 * time.Second)

	// A killed process.
	k.Kill()
	if err := k.Wait(10 * time.Second); err == nil {
		t.Errorf("%v exited cleanly after SIGKILL", k)
	}
	procs("after a process was killed", me, g.Pid())
	putMsgs(t, q2, 0, 1, 2)
	g.Expect("m 0 1", 10*time.Second)

	// A process that exits cleanly.
	if err := q2.Seal(); err != nil {
		t.Fatal(err)
	}
	g.Expect("eof", 10*time.Second)
	g.Succeed(10 * time.Second)
	ps = procs("after the consumer exited", me)
	if !ps[0].Producer || ps[0].Consumer {
		t.Errorf("this process's entry %+v; want a producer that never got", ps[0])
	}
	if got := drained(t, g); !slices.Equal(got, [][2]uint32{{0, 0}, {0, 1}}) {
		t.Errorf("consumer process got %v; want (0, 0), (0, 1)", got)
	}
}
