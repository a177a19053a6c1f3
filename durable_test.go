package mpq_test

// Durable queues: copies of a queue file truncated at every record boundary
// and inside every record, and with a byte of every record damaged; files
// whose identity or positions are damaged; producers killed in the middle
// of a Put; "crash images" assembled from the pages of a file being written,
// in random order. Recovery never delivers a damaged message, never loses
// one that was put (and synced) before the damage, and counts each damaged
// stretch in Stats.Torn.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/ring/ringtest"
	"github.com/mpq-go/mpq/internal/shm"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("durable-producer", runDurableProducer)
}

// Offsets of header words (see internal/ring/layout.go).
const (
	durFlags    = 48
	durTail     = 128
	durHead     = 256
	durFree     = 264
	durInFlight = 272
)

// durID is the producer id of the messages these tests put.
const durID = 7

// durMsg returns message seq: appendMsg's id, sequence number and checksum,
// then a body of bodyLen bytes none of which is zero, so that a message
// zeroed from any point on no longer checks.
func durMsg(seq, bodyLen int) []byte {
	body := make([]byte, bodyLen)
	for i := range body {
		body[i] = byte(seq*7+i*13) | 0x80
	}
	return appendMsg(nil, durID, uint32(seq), body)
}

// durBodies are the body lengths the tests cycle through: with the 12-byte
// message header, every remainder modulo the 16-byte record alignment.
var durBodies = []int{1, 2, 3, 4, 5, 9, 15, 19, 20, 21, 36, 37, 52, 84, 100, 116, 200, 243, 500, 1000}

// A durImage is a closed durable queue file and where its records lie.
type durImage struct {
	ringtest.Layout // every record put
	name            string
	data            []byte
	maxM            int
	recs            []ringtest.Rec // records above head, in position order
	total           int            // messages put
}

// durBuild creates a durable queue of the given capacity in dir, puts
// messages through it (taking the first `taken` of them with Get after the
// first `before` are put, so that the ring can wrap), syncs and closes it,
// and returns its file and the layout of its records, checked against the
// tail the file records.
func durBuild(t *testing.T, dir string, capacity, maxMsg, before, taken, after int) *durImage {
	t.Helper()
	o := &mpq.Options{Dir: dir, Durable: true, Capacity: capacity, MaxMessage: maxMsg, Sync: mpq.SyncNever}
	q, err := mpq.Create("src", o)
	if err != nil {
		t.Fatal(err)
	}
	im := &durImage{
		Layout: ringtest.Layout{Cap: uint64(capacity), Header: ring.DurableHeaderBytes, Size: ring.DurableRecordSize},
		maxM:   maxMsg,
	}
	put := func(seq int) {
		m := durMsg(seq, durBodies[seq%len(durBodies)])
		if err := q.TryPut(m); err != nil {
			t.Fatalf("put %d (%d bytes): %v", seq, len(m), err)
		}
		im.Put(seq, len(m))
		im.total++
	}
	for seq := range before {
		put(seq)
	}
	for i := range taken {
		m, err := q.TryGet()
		if id, seq, perr := parseMsg(m); err != nil || perr != nil || id != durID || seq != uint32(i) {
			t.Fatalf("get %d: (%d, %d), %v, %v", i, id, seq, err, perr)
		}
	}
	for seq := before; seq < before+after; seq++ {
		put(seq)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if im.data, err = os.ReadFile(filepath.Join(dir, "src.mpq")); err != nil {
		t.Fatal(err)
	}
	if got := binary.NativeEndian.Uint64(im.data[durTail:]); got != im.Tail {
		t.Fatalf("the file's tail is %d; the test's account says %d (did the record format change?)", got, im.Tail)
	}
	head := binary.NativeEndian.Uint64(im.data[durHead:])
	im.recs = im.From(head)
	// Every record header where the account puts it.
	for _, c := range im.recs {
		h := binary.NativeEndian.Uint64(im.data[ring.RingOffset+c.Pos&(im.Cap-1):])
		want := uint64(c.N) | 1<<32
		if c.Pad() {
			want = uint64(c.N) | 2<<32
		}
		if h != want {
			t.Fatalf("record at %d has header %#x; want %#x", c.Pos, h, want)
		}
	}
	return im
}

// durWrite writes data as the queue file of name in dir.
func durWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name+".mpq")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// durSize returns the size of the file at path.
func durSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// durDrain takes every message of q with TryGet and returns their sequence
// numbers, failing on a damaged one.
func durDrain(t *testing.T, q *mpq.Queue) []int {
	t.Helper()
	seqs := []int{}
	for {
		m, err := q.TryGet()
		if errors.Is(err, mpq.ErrEmpty) {
			return seqs
		}
		if err != nil {
			t.Fatalf("TryGet after %d messages: %v", len(seqs), err)
		}
		id, seq, err := parseMsg(m)
		if err != nil || id != durID {
			t.Fatalf("TryGet after messages %v returned a damaged message (%d bytes, id %d): %v", seqs, len(m), id, err)
		}
		seqs = append(seqs, int(seq))
	}
}

// durCheck opens the queue file name in dir, which no process has open,
// so that it is recovered, and checks that exactly the messages want come
// out, in order, with torn damaged stretches counted; then that the queue
// works.
func durCheck(t *testing.T, dir, name string, want []int, torn uint64) {
	t.Helper()
	q, err := mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true, Sync: mpq.SyncNever})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer q.Close()
	s := q.Stats()
	if s.Torn != torn || s.Len != len(want) {
		t.Errorf("Stats after recovery: Torn %d, Len %d; want %d, %d", s.Torn, s.Len, torn, len(want))
	}
	if got := durDrain(t, q); !slices.Equal(got, want) {
		t.Fatalf("recovered messages %v; want %v", got, want)
	}
	m := durMsg(1<<20, 30)
	if err := q.TryPut(m); err != nil {
		t.Fatalf("TryPut after recovery: %v", err)
	}
	if got, err := q.TryGet(); err != nil || !bytes.Equal(got, m) {
		t.Fatalf("TryGet after recovery: %d bytes, %v", len(got), err)
	}
}

// durImages returns the queue files the truncation and damage tests work
// on: one whose ring never wrapped ("flat"), and one that wrapped once, with
// a padding record at the end of its first lap ("wrapped").
func durImages(t *testing.T) []*durImage {
	t.Helper()
	flat := durBuild(t, t.TempDir(), 1<<15, 2000, 40, 0, 0)
	flat.name = "flat"
	w := durBuild(t, t.TempDir(), 4096, 1500, 16, 14, 22)
	w.name = "wrapped"
	if pads := ringtest.Pads(w.recs); pads != 1 || w.Tail <= w.Cap {
		t.Fatalf("wrapped image: %d padding records, tail %d; want a ring that wrapped once", pads, w.Tail)
	}
	return []*durImage{flat, w}
}

// TestDurableTruncated truncates copies of a queue file at every record
// boundary and inside every record, and opens them: the file is extended
// back, every record wholly before the cut is delivered intact and in order,
// nothing after it is, and the damage from the cut to tail is one stretch
// (none when the cut is past every record).
func TestDurableTruncated(t *testing.T) {
	for _, im := range durImages(t) {
		t.Run(im.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, cut := range im.Cuts(im.recs) {
				path := durWrite(t, dir, "cut", im.data)
				if err := os.Truncate(path, ring.RingOffset+int64(cut)); err != nil {
					t.Fatal(err)
				}
				seqs, torn := ringtest.Expect(im.recs, im.TruncatedAt(cut))
				t.Run(fmt.Sprint("cut ", cut), func(t *testing.T) { durCheck(t, dir, "cut", seqs, torn) })
				if size := durSize(t, path); size != int64(len(im.data)) {
					t.Errorf("cut %d: file of %d bytes after recovery; want %d", cut, size, len(im.data))
				}
			}
			// Cut before the ring: the header survives, every record is gone.
			for _, size := range []int64{ring.PageSize, ring.PageSize + 1, ring.RingOffset / 2, ring.RingOffset - 1} {
				durWrite(t, dir, "cut", im.data)
				if err := os.Truncate(filepath.Join(dir, "cut.mpq"), size); err != nil {
					t.Fatal(err)
				}
				seqs, torn := ringtest.Expect(im.recs, func(ringtest.Rec) bool { return true })
				t.Run(fmt.Sprint("size ", size), func(t *testing.T) { durCheck(t, dir, "cut", seqs, torn) })
			}
			// Cut into the header: not a queue file any more.
			for _, size := range []int64{0, 1, 100, ring.PageSize - 1} {
				path := durWrite(t, dir, "cut", im.data)
				if err := os.Truncate(path, size); err != nil {
					t.Fatal(err)
				}
				q, err := mpq.Open("cut", &mpq.Options{Dir: dir, NoCreate: true})
				if !errors.Is(err, mpq.ErrIncompatible) {
					t.Errorf("Open of a file of %d bytes: %v; want %v", size, err, mpq.ErrIncompatible)
				}
				if err == nil {
					q.Close()
				}
				if got := durSize(t, path); got != size {
					t.Errorf("Open changed a file of %d bytes to %d", size, got)
				}
			}
		})
	}
}

// TestDurableDamagedRecord damages one byte of every record in turn (in its
// header word, its checksum word, and its message) in a copy of a queue
// file: recovery drops exactly that record, counts one stretch, and
// delivers every other message intact and in order.
func TestDurableDamagedRecord(t *testing.T) {
	for _, part := range []struct {
		name string
		off  func(ringtest.Rec) int // offset in the record
		xor  byte
	}{
		{"header", func(ringtest.Rec) int { return 0 }, 0x01},
		{"checksum", func(ringtest.Rec) int { return 9 }, 0x20},
		{"message", func(c ringtest.Rec) int { return ring.DurableHeaderBytes + c.N/2 }, 0x01},
	} {
		t.Run(part.name, func(t *testing.T) {
			for _, im := range durImages(t) {
				dir := t.TempDir()
				for i, victim := range im.recs {
					if victim.Pad() && part.name == "message" {
						continue // not covered by a padding record's checksum
					}
					data := bytes.Clone(im.data)
					data[ring.RingOffset+int(victim.Pos&(im.Cap-1))+part.off(victim)] ^= part.xor
					durWrite(t, dir, "bad", data)
					seqs, torn := ringtest.Expect(im.recs, func(c ringtest.Rec) bool { return c.Pos == victim.Pos })
					t.Run(fmt.Sprintf("%s record %d", im.name, i), func(t *testing.T) { durCheck(t, dir, "bad", seqs, torn) })
				}
			}
		})
	}
}

// TestDurableCorruptFile damages the identity or the positions of a copy of
// a queue file: Open fails with ErrIncompatible or ErrCorrupt, does not
// panic, and leaves the file as it was.
func TestDurableCorruptFile(t *testing.T) {
	im := durBuild(t, t.TempDir(), 1<<15, 2000, 30, 5, 0)
	head := binary.NativeEndian.Uint64(im.data[durHead:])
	u32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.NativeEndian.PutUint32(b[off:], v) }
	}
	u64 := func(off int, v uint64) func([]byte) {
		return func(b []byte) { binary.NativeEndian.PutUint64(b[off:], v) }
	}
	both := func(fs ...func([]byte)) func([]byte) {
		return func(b []byte) {
			for _, f := range fs {
				f(b)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		patch    func([]byte)
		want     error
		knownBug string // if set, the case fails today: skipped unless MPQ_TEST_KNOWN_BUGS=1
	}{
		{"magic", func(b []byte) { b[3] ^= 0x20 }, mpq.ErrIncompatible, ""},
		{"magic zeroed", func(b []byte) { clear(b[:8]) }, mpq.ErrIncompatible, ""},
		{"header zeroed", func(b []byte) { clear(b[:ring.PageSize]) }, mpq.ErrIncompatible, ""},
		{"version", u32(hdrVersion, ring.Version+1), mpq.ErrIncompatible, ""},
		{"version 1", u32(hdrVersion, 1), mpq.ErrIncompatible, ""},
		{"byte order", u32(hdrByteOrder, 0x04030201), mpq.ErrIncompatible, ""},
		{"unknown flag", u32(durFlags, ring.FlagDurable|ring.FlagLockFile|4), mpq.ErrIncompatible, ""},
		{"capacity not a power of two", u64(hdrCapacity, 1<<15+16), mpq.ErrCorrupt, ""},
		{"capacity zero", u64(hdrCapacity, 0), mpq.ErrCorrupt, ""},
		{"capacity under the minimum", u64(hdrCapacity, 2048), mpq.ErrCorrupt, ""},
		{"capacity huge", u64(hdrCapacity, 1<<63), mpq.ErrCorrupt, ""},
		{"max message zero", u64(hdrMaxMsg, 0), mpq.ErrCorrupt, ""},
		{"max message over half the ring", u64(hdrMaxMsg, 1<<14), mpq.ErrCorrupt, ""},
		{"ring offset", u32(hdrRingOff, ring.RingOffset+16), mpq.ErrCorrupt, ""},
		{"tail below head", u64(durTail, head-16), mpq.ErrCorrupt, ""},
		{"tail a ring past head", u64(durTail, head+1<<15+16), mpq.ErrCorrupt, ""},
		{"tail unaligned", u64(durTail, im.Tail+8), mpq.ErrCorrupt, ""},
		{"tail far beyond", u64(durTail, 1<<62), mpq.ErrCorrupt, ""},
		{"head past tail", u64(durHead, im.Tail+16), mpq.ErrCorrupt, ""},
		{"head unaligned", both(u32(durInFlight, 1), u64(durFree, 0), u64(durHead, head+8)), mpq.ErrCorrupt, ""},
		{"head below free", both(u32(durInFlight, 1), u64(durFree, head), u64(durHead, head-16)), mpq.ErrCorrupt, ""},
		{"free unaligned", both(u32(durInFlight, 1), u64(durFree, 8)), mpq.ErrCorrupt, ""},
		{"free past tail", both(u32(durInFlight, 1), u64(durFree, im.Tail+16)), mpq.ErrCorrupt, ""},
		// Plausible damage to the identity words is caught by their
		// checksum (before it, a doubled capacity made recovery extend the
		// file, and a cleared durable flag made Get deliver checksum words).
		{"capacity doubled", u64(hdrCapacity, 1<<16), mpq.ErrCorrupt, ""},
		{"capacity 1 TiB", u64(hdrCapacity, 1<<40), mpq.ErrCorrupt, ""},
		{"max message lowered", u64(hdrMaxMsg, 100), mpq.ErrCorrupt, ""},
		{"durable flag cleared", u32(durFlags, 0), mpq.ErrCorrupt, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.knownBug != "" && os.Getenv("MPQ_TEST_KNOWN_BUGS") != "1" {
				t.Skipf("known bug: %s (set MPQ_TEST_KNOWN_BUGS=1 to run)", tc.knownBug)
			}
			dir := t.TempDir()
			data := bytes.Clone(im.data)
			tc.patch(data)
			path := durWrite(t, dir, "bad", data)
			q, err := mpq.Open("bad", &mpq.Options{Dir: dir, NoCreate: true})
			if !errors.Is(err, tc.want) {
				t.Errorf("Open: %v; want %v", err, tc.want)
			}
			if err == nil {
				if m, err := q.TryGet(); err == nil {
					if _, _, err := parseMsg(m); err != nil {
						t.Errorf("TryGet delivered a damaged message: %v", err)
					}
				}
				q.Close()
			}
			if size := durSize(t, path); size != int64(len(data)) {
				t.Fatalf("Open changed the size of the file to %d (was %d)", size, len(data))
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, data) {
				t.Errorf("Open changed the file (%d bytes; was %d)", len(after), len(data))
			}
		})
	}
}

// durSyncEnv says which Sync policy a durable-producer uses: "put", "never"
// or a duration.
const durSyncEnv = "MPQ_TEST_SYNC"

// runDurableProducer opens a durable queue with the Sync policy of
// MPQ_TEST_SYNC and puts messages of producer MPQ_TEST_ID (from newMsgGen)
// without end, appending "SEQ\n" to the file MPQ_TEST_OUT with one write(2)
// after each Put that returned. With MPQ_TEST_HOOK_AFTER it stops for good
// (saying "stuck") with half of message N+1 copied, holding the lock.
func runDurableProducer() error {
	stopAt(ring.HookPut, testutil.EnvInt(envHookAfter, -1))
	var policy mpq.SyncPolicy
	switch s := os.Getenv(durSyncEnv); s {
	case "put", "":
		policy = mpq.SyncEveryPut
	case "never":
		policy = mpq.SyncNever
	default:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		policy = mpq.SyncEvery(d)
	}
	q, err := mpq.Open(os.Getenv(envName), &mpq.Options{Dir: os.Getenv(envDir), NoCreate: true, Sync: policy})
	if err != nil {
		return err
	}
	log, err := os.OpenFile(os.Getenv(envOut), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	g := newMsgGen(testutil.EnvInt(envID, 0), uint64(testutil.EnvInt(envSeed, 1)), q.Stats().MaxMessage, testutil.EnvInt(envLarge, 0))
	testutil.Say("started")
	var buf []byte
	for {
		buf = g.next(buf)
		if err := q.Put(context.Background(), buf); err != nil {
			return fmt.Errorf("put %d: %w", g.seq-1, err)
		}
		if _, err := log.Write([]byte(strconv.Itoa(int(g.seq-1)) + "\n")); err != nil {
			return err
		}
	}
}

// durLogged reads a durable-producer's log: it must hold 0, 1, 2, ...
func durLogged(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] != "" {
		t.Fatalf("log %s ends in a partial line %q", path, lines[len(lines)-1])
	}
	lines = lines[:len(lines)-1]
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("log line %d is %q", i, l)
		}
	}
	return len(lines)
}

// durDrainStreams opens the queue name in dir (recovering it: no other
// process has it open), checks the stats, and takes everything, checking
// each message; it returns the sequence numbers per producer.
func durDrainStreams(t *testing.T, dir, name string) (map[uint32][]uint32, mpq.Stats) {
	t.Helper()
	q, err := mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true, Sync: mpq.SyncNever})
	if err != nil {
		t.Fatalf("Open after the kill: %v", err)
	}
	defer q.Close()
	got := map[uint32][]uint32{}
	for {
		m, err := q.TryGet()
		if errors.Is(err, mpq.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatalf("TryGet: %v", err)
		}
		id, seq, err := parseMsg(m)
		if err != nil {
			t.Fatalf("recovered a damaged message: %v", err)
		}
		got[id] = append(got[id], seq)
	}
	// A Put finds no lock left by the dead producer: recovery cleared it
	// (taking it over instead would count in Recovered).
	if err := q.TryPut(appendMsg(nil, 0, 0, []byte("after"))); err != nil {
		t.Fatalf("TryPut after recovery: %v", err)
	}
	return got, q.Stats()
}

// TestDurableKilledWriter kills a producer of a durable queue at a random
// moment in the middle of its Puts, with each Sync policy, then opens the
// queue alone: every Put the producer logged as returned is delivered,
// intact and in order, and at most the one Put in progress besides.
// TestDurableStoppedWriter (under the tag mpqhooks) kills it stopped in a
// Put with half its message copied.
func TestDurableKilledWriter(t *testing.T) {
	for _, tc := range []struct{ name, sync string }{
		{"random, every put", "put"},
		{"random, every 5ms", "5ms"},
		{"random, never", "never"},
	} {
		t.Run(tc.name, func(t *testing.T) { killedWriter(t, tc.sync, -1) })
	}
}

// killedWriter runs a durable-producer with the Sync policy sync, stops it
// in put number stop+1 (with stop >= 0; at a random moment otherwise),
// kills it, and checks what recovery delivers.
func killedWriter(t *testing.T, sync string, stop int) {
	dir := t.TempDir()
	q, err := mpq.Create("killed", &mpq.Options{Dir: dir, Durable: true, Capacity: 4 << 20, MaxMessage: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// Not open here while the producer runs and when it dies: the
	// next Open must be alone, and recover.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	p := testutil.Start(t, "durable-producer", namedQueue(dir, "killed"), testutil.Env(
		envID+"=1", envSeed+"=3", envLarge+"=10", envOut+"="+logPath,
		durSyncEnv+"="+sync, fmt.Sprintf("%s=%d", envHookAfter, stop)))
	if stop >= 0 {
		p.Expect("stuck", 30*time.Second)
	} else {
		p.Expect("started", 30*time.Second)
		const want = 50 // puts logged before the kill, at least
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			if fi, err := os.Stat(logPath); err == nil && fi.Size() >= int64(3*want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("producer logged too few puts in 30s%s", p.Diag())
			}
		}
	}
	p.Kill()
	if err := p.Wait(10 * time.Second); err == nil {
		t.Fatalf("%v exited cleanly after SIGKILL", p)
	}
	logged := durLogged(t, logPath)
	if stop >= 0 && logged != stop {
		t.Fatalf("producer logged %d puts before it stopped; want %d", logged, stop)
	}
	got, s := durDrainStreams(t, dir, "killed")
	seqs := got[1]
	delete(got, 1)
	if len(got) != 0 {
		t.Errorf("recovered messages of other producers: %v", got)
	}
	most := logged + 1 // the Put in progress may have returned unlogged
	if stop >= 0 {
		most = logged // the stopped Put never committed
	}
	if len(seqs) < logged || len(seqs) > most {
		t.Errorf("recovered %d messages; the producer logged %d", len(seqs), logged)
	}
	for i, seq := range seqs {
		if seq != uint32(i) {
			t.Fatalf("recovered message %d has seq %d; want 0, 1, 2, ... (got %v)", i, seq, seqs)
		}
	}
	if s.Torn != 0 || s.Recovered != 0 {
		t.Errorf("Stats: Torn %d, Recovered %d; want 0, 0", s.Torn, s.Recovered)
	}
	t.Logf("%d puts logged, %d recovered", logged, len(seqs))
}

// durCrashCopy copies the file at path into image page by page, in the
// order perm gives.
func durCrashCopy(t *testing.T, f *os.File, image []byte, pages []int) {
	t.Helper()
	for _, p := range pages {
		off := p * ring.PageSize
		if _, err := f.ReadAt(image[off:off+ring.PageSize], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDurableCrashImage copies the file of a durable queue that a producer
// keeps writing (SyncNever) page by page, in random order, as a disk may
// write back the pages of a file in any order, then writes a random half of
// the pages again, later; and recovers the copy. Nothing damaged comes out,
// what does come out is in order, and every message put before the copy
// began is there (nothing consumes, so none of their records changes while
// the pages are copied).
func TestDurableCrashImage(t *testing.T) {
	const capacity = 2 << 20
	dir := t.TempDir()
	overlapped := 0
	for iter := range 6 {
		name := fmt.Sprint("crash", iter)
		q, err := mpq.Create(name, &mpq.Options{Dir: dir, Durable: true, Capacity: capacity, Sync: mpq.SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		var (
			put  atomic.Int64 // Puts returned
			stop = make(chan struct{})
			wg   sync.WaitGroup
			perr error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newMsgGen(durID, uint64(iter), q.Stats().MaxMessage, 0)
			var buf []byte
			start := time.Now()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// At most one Put every 2µs: the ring must not fill up
				// before the copy ends.
				for time.Since(start) < time.Duration(n)*2*time.Microsecond {
					runtime.Gosched()
				}
				buf = g.next(buf)
				if err := q.TryPut(buf); err != nil {
					if !errors.Is(err, mpq.ErrFull) {
						perr = err
					}
					return
				}
				put.Add(1)
			}
		}()
		for put.Load() < 100 {
			time.Sleep(100 * time.Microsecond)
		}
		f, err := os.Open(filepath.Join(dir, name+".mpq"))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(iter), 42))
		image := make([]byte, ring.MinSize(capacity))
		before := put.Load()
		t0 := time.Now()
		durCrashCopy(t, f, image, rng.Perm(len(image)/ring.PageSize))
		time.Sleep(time.Millisecond)
		later := rng.Perm(len(image) / ring.PageSize)
		durCrashCopy(t, f, image, later[:len(later)/2])
		after := put.Load()
		took := time.Since(t0)
		close(stop)
		wg.Wait()
		f.Close()
		if perr != nil {
			t.Fatalf("producer: %v", perr)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}

		cdir := t.TempDir()
		durWrite(t, cdir, "copy", image)
		got, s := durDrainStreams(t, cdir, "copy")
		seqs := got[durID]
		delete(got, durID)
		if len(got) != 0 {
			t.Errorf("iteration %d: recovered messages of other producers: %v", iter, got)
		}
		for i, seq := range seqs {
			if i < int(before) && seq != uint32(i) || i > 0 && seq <= seqs[i-1] {
				t.Fatalf("iteration %d: recovered message %d has seq %d (previous %d); want 0 to %d, then any in order",
					iter, i, seq, seqs[max(i-1, 0)], before-1)
			}
			if int64(seq) > after {
				t.Fatalf("iteration %d: recovered seq %d; only %d Puts had returned when the copy ended", iter, seq, after)
			}
		}
		if int64(len(seqs)) < before {
			t.Fatalf("iteration %d: recovered %d messages; %d were put before the copy began", iter, len(seqs), before)
		}
		t.Logf("iteration %d: %d puts before the copy, %d after it (%v); %d recovered, %d damaged stretches",
			iter, before, after, took, len(seqs), s.Torn)
		if after > before {
			overlapped++
		}
	}
	if overlapped == 0 {
		t.Errorf("in no iteration did a Put return while the pages were copied")
	}
}

// TestDurableSyncPolicies: each Sync policy round-trips messages through a
// close and a reopen (which recovers, finding nothing damaged); Sync works
// until Close and then gives ErrClosed.
func TestDurableSyncPolicies(t *testing.T) {
	for _, policy := range []mpq.SyncPolicy{mpq.SyncEveryPut, mpq.SyncEvery(2 * time.Millisecond), mpq.SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			o := &mpq.Options{Dir: dir, Durable: true, Capacity: 1 << 16, Sync: policy}
			q, err := mpq.Create("sync", o)
			if err != nil {
				t.Fatal(err)
			}
			for seq := range 50 {
				if err := q.Put(t.Context(), durMsg(seq, durBodies[seq%len(durBodies)])); err != nil {
					t.Fatal(err)
				}
				if seq == 25 {
					time.Sleep(5 * time.Millisecond) // let SyncEvery flush
				}
			}
			if err := q.Sync(); err != nil {
				t.Errorf("Sync: %v", err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if err := q.Sync(); !errors.Is(err, mpq.ErrClosed) {
				t.Errorf("Sync after Close: %v; want %v", err, mpq.ErrClosed)
			}
			want := make([]int, 50)
			for i := range want {
				want[i] = i
			}
			durCheck(t, dir, "sync", want, 0)
		})
	}
}

// TestDurableInvalidOptions: a durable queue needs a named queue on disk.
func TestDurableInvalidOptions(t *testing.T) {
	if q, err := mpq.New(&mpq.Options{Durable: true}); !errors.Is(err, mpq.ErrInvalidOptions) {
		t.Errorf("New(Durable): %v; want %v", err, mpq.ErrInvalidOptions)
		if err == nil {
			q.Close()
		}
	}
	if q, err := mpq.Open("durable-sync", &mpq.Options{Dir: t.TempDir(), Durable: true, Sync: -2}); !errors.Is(err, mpq.ErrInvalidOptions) {
		t.Errorf("Open with Sync -2: %v; want %v", err, mpq.ErrInvalidOptions)
		if err == nil {
			q.Close()
		}
	}
	// The default directory, and any directory on tmpfs.
	var dirs []string
	if onDisk, err := shm.OnDisk(filepath.Dir(shm.DefaultDir())); err == nil && !onDisk {
		dirs = append(dirs, "")
	}
	if onDisk, err := shm.OnDisk("/dev/shm"); err == nil && !onDisk {
		d, err := os.MkdirTemp("/dev/shm", "mpq-durable-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		t.Log("no tmpfs directory here: only New is checked")
	}
	for _, dir := range dirs {
		name := fmt.Sprintf("durable-tmpfs-%d-%d", os.Getpid(), time.Now().UnixNano())
		q, err := mpq.Open(name, &mpq.Options{Dir: dir, Durable: true})
		if !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("Open(Durable) in %q (tmpfs): %v; want %v", dir, err, mpq.ErrInvalidOptions)
		}
		if err == nil {
			q.Close()
			mpq.Remove(name, &mpq.Options{Dir: dir})
		}
		if err := mpq.Remove(name, &mpq.Options{Dir: dir}); err == nil {
			t.Errorf("a failed Open(Durable) in %q left a queue file behind", dir)
		}
	}
}

// TestDurableHeldRedelivered: messages received and not acknowledged when
// the last handle closes are given back by the recovery of the next Open,
// and come first; acknowledged ones do not come back.
func TestDurableHeldRedelivered(t *testing.T) {
	dir := t.TempDir()
	o := &mpq.Options{Dir: dir, Durable: true, Capacity: 1 << 16, Sync: mpq.SyncNever}
	q, err := mpq.Create("held", o)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range 8 {
		if err := q.TryPut(durMsg(seq, 40)); err != nil {
			t.Fatal(err)
		}
	}
	var held []*mpq.Delivery
	for i := range 4 {
		d, err := q.TryReceive()
		if err != nil {
			t.Fatal(err)
		}
		if _, seq, err := parseMsg(d.Data()); err != nil || seq != uint32(i) {
			t.Fatalf("Receive %d: seq %d, %v", i, seq, err)
		}
		held = append(held, d)
	}
	if err := held[1].Ack(); err != nil {
		t.Fatal(err)
	}
	if m, err := q.TryGet(); err != nil { // 4, by Get: done
		t.Fatal(err)
	} else if _, seq, _ := parseMsg(m); seq != 4 {
		t.Fatalf("Get: seq %d; want 4", seq)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q, err = mpq.Open("held", o)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if s := q.Stats(); s.Len != 6 || s.InFlight != 3 || s.Torn != 0 {
		t.Errorf("Stats after reopening: Len %d, InFlight %d, Torn %d; want 6, 3, 0", s.Len, s.InFlight, s.Torn)
	}
	var got []int
	for range 6 {
		d, err := q.TryReceive()
		if err != nil {
			t.Fatalf("Receive after %v: %v", got, err)
		}
		_, seq, err := parseMsg(d.Data())
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if seq <= 3 {
			want = 2 // held when the queue closed
		}
		if d.Count() != want {
			t.Errorf("message %d delivered with Count %d; want %d", seq, d.Count(), want)
		}
		got = append(got, int(seq))
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int{0, 2, 3, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("after reopening, Receive delivered %v; want %v", got, want)
	}
	if _, err := q.TryReceive(); !errors.Is(err, mpq.ErrEmpty) {
		t.Errorf("Receive after draining: %v; want %v", err, mpq.ErrEmpty)
	}
}

// TestDurableConcurrentOpen opens a damaged copy of a queue file from
// several goroutines at once: exactly one recovers it (Torn counts the
// damage once), and between them the handles get every intact message
// once, none damaged.
func TestDurableConcurrentOpen(t *testing.T) {
	im := durBuild(t, t.TempDir(), 1<<15, 2000, 40, 0, 0)
	victim := im.recs[17]
	data := bytes.Clone(im.data)
	data[ring.RingOffset+int(victim.Pos)+ring.DurableHeaderBytes] ^= 0xFF
	want, _ := ringtest.Expect(im.recs, func(c ringtest.Rec) bool { return c.Pos == victim.Pos })
	dir := t.TempDir()
	durWrite(t, dir, "shared", data)

	const openers = 4
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		got   []int
		errs  []error
		qs    []*mpq.Queue
		start = make(chan struct{})
	)
	for range openers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			q, err := mpq.Open("shared", &mpq.Options{Dir: dir, NoCreate: true})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			for {
				m, err := q.TryGet()
				if err != nil {
					if !errors.Is(err, mpq.ErrEmpty) {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					break
				}
				_, seq, err := parseMsg(m)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				got = append(got, int(seq))
				mu.Unlock()
			}
			mu.Lock()
			qs = append(qs, q)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for _, q := range qs {
		if s := q.Stats(); s.Torn != 1 {
			t.Errorf("Stats().Torn = %d; want 1: the damage is recovered and counted once", s.Torn)
		}
		q.Close()
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the handles got %v between them; want %v, once each", got, want)
	}
}
