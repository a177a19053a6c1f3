package mpq_test

// Bad input: messages, names, options, files that are not queues or are
// damaged, use after Close, and the permissions of queue files and of the
// default directory.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
)

// Offsets of the identity words of a queue file (see internal/ring/layout.go).
// The positions move with the layout: positionOffsets finds them.
const (
	hdrVersion   = 8
	hdrByteOrder = 12
	hdrCapacity  = 16
	hdrMaxMsg    = 24
	hdrRingOff   = 32
)

// badCap is the capacity of the small queues these tests make.
const badCap = 4096

// badQueue creates a queue name in dir with a 4 KiB ring and 100-byte
// messages holding msgs, and returns it open.
func badQueue(t *testing.T, dir, name string, msgs ...string) *mpq.Queue {
	t.Helper()
	q, err := mpq.Create(name, &mpq.Options{Dir: dir, Capacity: badCap, MaxMessage: 100})
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	for _, m := range msgs {
		if err := q.TryPut([]byte(m)); err != nil {
			t.Fatalf("TryPut(%q): %v", m, err)
		}
	}
	return q
}

// badFile makes a closed queue file name in dir holding three messages, the
// first of which has been taken (so head is not 0), and returns its path.
func badFile(t *testing.T, dir, name string) string {
	t.Helper()
	q := badQueue(t, dir, name, "first", "second", "third")
	if _, err := q.TryGet(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name+".mpq")
}

func patch32(t *testing.T, path string, off int64, v uint32) {
	t.Helper()
	patchBytes(t, path, off, binary.NativeEndian.AppendUint32(nil, v))
}

func patch64(t *testing.T, path string, off int64, v uint64) {
	t.Helper()
	patchBytes(t, path, off, binary.NativeEndian.AppendUint64(nil, v))
}

func patchBytes(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// positionOffsets finds where a file made by badFile keeps its positions:
// tail, the only header word after the identity holding 48 (three 16-byte
// records), and head (and free, if the format keeps a separate reclaim
// position), the words holding 16 (one record taken).
func positionOffsets(t *testing.T, path string) (tail int64, heads []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.NativeEndian.Uint64(b[hdrCapacity:]); got != badCap {
		t.Fatalf("capacity word = %d; want %d (did the layout change?)", got, badCap)
	}
	var tails []int64
	for off := int64(64); off < ring.PageSize; off += 8 {
		switch binary.NativeEndian.Uint64(b[off:]) {
		case 48:
			tails = append(tails, off)
		case 16:
			heads = append(heads, off)
		}
	}
	if len(tails) != 1 || len(heads) < 1 || len(heads) > 2 {
		t.Fatalf("words holding 48 at %v, 16 at %v; want one tail and a head (did the layout change?)", tails, heads)
	}
	return tails[0], heads
}

func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q := badQueue(t, dir, "big", "kept")
	defer q.Close()
	path := filepath.Join(dir, "big.mpq")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 101)
	for _, tc := range []struct {
		name string
		op   func() (int, error)
	}{
		{"Put", func() (int, error) { return 0, q.Put(ctx, big) }},
		{"TryPut", func() (int, error) { return 0, q.TryPut(big) }},
		{"Put of a ring's worth", func() (int, error) { return 0, q.Put(ctx, make([]byte, 2*badCap)) }},
		{"PutBatch", func() (int, error) { return q.PutBatch(ctx, [][]byte{big}) }},
		{"PutBatch with a large second", func() (int, error) { return q.PutBatch(ctx, [][]byte{[]byte("ok"), big}) }},
	} {
		n, err := tc.op()
		if !errors.Is(err, mpq.ErrTooLarge) || n != 0 {
			t.Errorf("%s: got %d, %v; want 0, %v", tc.name, n, err, mpq.ErrTooLarge)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("a Put of a message over the maximum changed the queue file")
	}
	if s := q.Stats(); s.Len != 1 || s.Puts != 1 {
		t.Errorf("Stats = %v; want the one message", s)
	}
	if m, err := q.TryGet(); err != nil || string(m) != "kept" {
		t.Errorf("TryGet = %q, %v; want %q, nil", m, err, "kept")
	}
	if _, err := q.TryGet(); !errors.Is(err, mpq.ErrEmpty) {
		t.Errorf("TryGet: got %v; want %v", err, mpq.ErrEmpty)
	}
	if err := q.TryPut(big[:100]); err != nil {
		t.Errorf("TryPut of a maximum-size message: %v", err)
	}
}

// TestMaxMessageFitsEmptyQueue: a message of the largest size the
// options accept must fit an empty queue, whatever has passed through it
// before; otherwise Put waits for ever on an empty queue.
func TestMaxMessageFitsEmptyQueue(t *testing.T) {
	for _, max := range []int{badCap/2 - 8, badCap - 8} {
		q, err := mpq.New(&mpq.Options{Capacity: badCap, MaxMessage: max})
		if errors.Is(err, mpq.ErrInvalidOptions) {
			continue // refusing the size is a fix too
		}
		if err != nil {
			t.Fatal(err)
		}
		// Move the queue's positions off the start of the ring.
		if err := q.TryPut([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := q.TryGet(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if err := q.Put(ctx, make([]byte, max)); err != nil {
			t.Errorf("MaxMessage %d, Capacity %d: Put of %d bytes into an empty queue: %v", max, badCap, max, err)
		}
		cancel()
		q.Close()
	}
}

func TestInvalidName(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "queues")
	opts := &mpq.Options{Dir: dir}
	for _, name := range []string{
		"", "a/b", "/abs", "b/", "..", "../x", "a..b", "x\x00y", ".hidden", ".", strings.Repeat("n", 201),
	} {
		if q, err := mpq.Open(name, opts); !errors.Is(err, mpq.ErrInvalidName) {
			t.Errorf("Open(%q): got %v; want %v", name, err, mpq.ErrInvalidName)
			if err == nil {
				q.Close()
			}
		}
		if q, err := mpq.Create(name, opts); !errors.Is(err, mpq.ErrInvalidName) {
			t.Errorf("Create(%q): got %v; want %v", name, err, mpq.ErrInvalidName)
			if err == nil {
				q.Close()
			}
		}
		if err := mpq.Remove(name, opts); !errors.Is(err, mpq.ErrInvalidName) {
			t.Errorf("Remove(%q): got %v; want %v", name, err, mpq.ErrInvalidName)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("invalid names created the queue directory (Stat: %v)", err)
	}
	// Valid names, some unusual, all stay in dir.
	valid := []string{strings.Repeat("n", 200), "a", "a b", "a.b", "a.", "-", "~", "ü", "a\\b", "x:y", "q.mpq"}
	for _, name := range valid {
		q, err := mpq.Create(name, &mpq.Options{Dir: dir, Capacity: badCap})
		if err != nil {
			t.Errorf("Create(%q): %v", name, err)
			continue
		}
		if got := q.Name(); got != name {
			t.Errorf("Name() = %q; want %q", got, name)
		}
		q.Close()
		if _, err := os.Lstat(filepath.Join(dir, name+".mpq")); err != nil {
			t.Errorf("queue %q: %v", name, err)
		}
	}
	if n := dirEntries(dir); n != len(valid) {
		t.Errorf("queue directory holds %d entries besides lock files; want %d", n, len(valid))
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("the parent of the queue directory holds %d entries; want 1", len(entries))
	}
	for _, name := range valid {
		if err := mpq.Remove(name, &mpq.Options{Dir: dir}); err != nil {
			t.Errorf("Remove(%q): %v", name, err)
		}
	}
}

func TestNotAQueue(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name+".mpq"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("text", []byte("just some text\n"))
	write("longtext", bytes.Repeat([]byte("lorem ipsum dolor sit amet\n"), 1000))
	write("empty", nil)
	write("zeros", make([]byte, ring.MinSize(badCap)))
	write("header", []byte(ring.Magic)) // a magic and nothing else
	if err := os.Mkdir(filepath.Join(dir, "dir.mpq"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.mpq"), 0o600); err != nil {
		t.Fatal(err)
	}
	patch32(t, badFile(t, dir, "version"), hdrVersion, ring.Version+1)
	patch32(t, badFile(t, dir, "byteorder"), hdrByteOrder, 0x04030201)
	patchBytes(t, badFile(t, dir, "magic"), 0, []byte("MPQRINX"))

	for _, name := range []string{"text", "longtext", "empty", "zeros", "header", "dir", "fifo", "version", "byteorder", "magic"} {
		path := filepath.Join(dir, name+".mpq")
		var before []byte
		if name != "fifo" { // reading would wait for a writer
			before, _ = os.ReadFile(path)
		}
		q, err := mpq.Open(name, &mpq.Options{Dir: dir, NoCreate: true})
		if !errors.Is(err, mpq.ErrIncompatible) {
			t.Errorf("Open(%s, NoCreate): got %v; want %v", name, err, mpq.ErrIncompatible)
		}
		if err == nil {
			q.Close()
		}
		q, err = mpq.Open(name, &mpq.Options{Dir: dir})
		if !errors.Is(err, mpq.ErrIncompatible) {
			t.Errorf("Open(%s): got %v; want %v", name, err, mpq.ErrIncompatible)
		}
		if err == nil {
			q.Close()
		}
		if name != "fifo" {
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("Open(%s) changed the file", name)
			}
		}
		if _, err := mpq.Create(name, &mpq.Options{Dir: dir}); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create(%s): got %v; want %v", name, err, fs.ErrExist)
		}
	}
	// Through a descriptor.
	f, err := os.OpenFile(filepath.Join(dir, "longtext.mpq"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if q, err := mpq.OpenFile(f, nil); !errors.Is(err, mpq.ErrIncompatible) {
		t.Errorf("OpenFile(text): got %v; want %v", err, mpq.ErrIncompatible)
		if err == nil {
			q.Close()
		}
	}
}

func TestCorruptHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func(t *testing.T, path string)
	}{
		{"capacity not a power of two", func(t *testing.T, p string) { patch64(t, p, hdrCapacity, badCap+8) }},
		{"capacity zero", func(t *testing.T, p string) { patch64(t, p, hdrCapacity, 0) }},
		{"capacity over the file", func(t *testing.T, p string) { patch64(t, p, hdrCapacity, 2*badCap) }},
		{"capacity 1 TiB", func(t *testing.T, p string) { patch64(t, p, hdrCapacity, 1<<40) }},
		{"capacity huge", func(t *testing.T, p string) { patch64(t, p, hdrCapacity, 1<<63) }},
		{"max message zero", func(t *testing.T, p string) { patch64(t, p, hdrMaxMsg, 0) }},
		{"max message over the ring", func(t *testing.T, p string) { patch64(t, p, hdrMaxMsg, badCap) }},
		{"ring offset", func(t *testing.T, p string) { patch32(t, p, hdrRingOff, 0) }},
		{"truncated by a byte", func(t *testing.T, p string) { truncate(t, p, ring.MinSize(badCap)-1) }},
		{"truncated into the ring", func(t *testing.T, p string) { truncate(t, p, ring.RingOffset+100) }},
		{"truncated to the header", func(t *testing.T, p string) { truncate(t, p, ring.PageSize) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := badFile(t, dir, "q")
			tc.patch(t, path)
			q, err := mpq.Open("q", &mpq.Options{Dir: dir, NoCreate: true})
			if !errors.Is(err, mpq.ErrCorrupt) {
				t.Errorf("Open: got %v; want %v", err, mpq.ErrCorrupt)
			}
			if err == nil {
				q.Close()
			}
		})
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptPositions damages the positions and records of a queue that
// opens fine: the operations that read them return ErrCorrupt.
func TestCorruptPositions(t *testing.T) {
	const rec = 16 // bytes of the record of "first"
	ringAt := func(pos uint64) int64 { return ring.RingOffset + int64(pos%badCap) }
	for _, tc := range []struct {
		name             string
		head, tail       uint64 // 0: unchanged
		record           uint64 // if not 0, the header of the record at head
		wantGet, wantPut bool   // the operation must fail with ErrCorrupt
	}{
		{"tail far below head", 1024, 8, 0, true, true},
		{"tail just below head", 0, rec - 8, 0, true, true},
		{"tail more than a ring past head", 0, rec + badCap + 8, 0, true, true},
		{"tail far beyond", 0, 1 << 62, 0, true, true},
		{"head far beyond", 1 << 62, 0, 0, true, true},
		{"head unaligned", rec + 4, 0, 0, true, false},
		{"record of unknown state", 0, 0, 6 | 7<<32, true, false},
		{"record of the free state", 0, 0, 8, true, false},
		{"record longer than the maximum", 0, 0, 101 | 1<<32, true, false},
		{"record past tail", 0, 0, 40 | 1<<32, true, false},
		{"padding past tail", 0, 0, 40 | 2<<32, true, false},
		{"record past the end of the ring", 2*badCap - 16, 2*badCap + 64, 64 | 1<<32, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := badFile(t, dir, "q")
			tailOff, heads := positionOffsets(t, path)
			head := uint64(rec)
			if tc.head != 0 {
				head = tc.head
				for _, off := range heads {
					patch64(t, path, off, head)
				}
			}
			if tc.tail != 0 {
				patch64(t, path, tailOff, tc.tail)
			}
			if tc.record != 0 {
				patch64(t, path, ringAt(head), tc.record)
			}
			q, err := mpq.Open("q", &mpq.Options{Dir: dir, NoCreate: true})
			if err != nil {
				if !errors.Is(err, mpq.ErrCorrupt) {
					t.Fatalf("Open: got %v; want nil or %v", err, mpq.ErrCorrupt)
				}
				return
			}
			defer q.Close()
			// Get first: a Put would move tail.
			_, err = q.TryGet()
			if tc.wantGet && !errors.Is(err, mpq.ErrCorrupt) {
				t.Errorf("TryGet: got %v; want %v", err, mpq.ErrCorrupt)
			}
			if err != nil && !errors.Is(err, mpq.ErrCorrupt) && !errors.Is(err, mpq.ErrEmpty) {
				t.Errorf("TryGet: got %v; want nil, %v or %v", err, mpq.ErrCorrupt, mpq.ErrEmpty)
			}
			if tc.wantGet {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if _, err := q.Get(ctx); !errors.Is(err, mpq.ErrCorrupt) {
					t.Errorf("Get: got %v; want %v", err, mpq.ErrCorrupt)
				}
			}
			err = q.TryPut([]byte("new"))
			if tc.wantPut && !errors.Is(err, mpq.ErrCorrupt) {
				t.Errorf("TryPut: got %v; want %v", err, mpq.ErrCorrupt)
			}
			if err != nil && !errors.Is(err, mpq.ErrCorrupt) {
				t.Errorf("TryPut: got %v; want nil or %v", err, mpq.ErrCorrupt)
			}
			_ = q.Len()
			_ = q.Stats()
		})
	}
}

func TestUseAfterClose(t *testing.T) {
	ctx := context.Background()
	anon, err := mpq.New(&mpq.Options{Capacity: badCap})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []*mpq.Queue{badQueue(t, t.TempDir(), "closed", "m"), anon} {
		if err := q.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, tc := range []struct {
			name string
			op   func() error
		}{
			{"Close", q.Close},
			{"Put", func() error { return q.Put(ctx, []byte("x")) }},
			{"TryPut", func() error { return q.TryPut([]byte("x")) }},
			{"PutBatch", func() error { _, err := q.PutBatch(ctx, [][]byte{[]byte("x")}); return err }},
			{"Get", func() error { _, err := q.Get(ctx); return err }},
			{"TryGet", func() error { _, err := q.TryGet(); return err }},
			{"AppendGet", func() error { _, err := q.AppendGet(ctx, nil); return err }},
			{"TryAppendGet", func() error { _, err := q.TryAppendGet(nil); return err }},
			{"GetBatch", func() error { return q.GetBatch(ctx, new(mpq.Batch), 10) }},
			{"Seal", q.Seal},
			{"File", func() error {
				f, err := q.File()
				if err == nil {
					f.Close()
				}
				return err
			}},
		} {
			if err := tc.op(); !errors.Is(err, mpq.ErrClosed) {
				t.Errorf("%v: %s after Close: got %v; want %v", q, tc.name, err, mpq.ErrClosed)
			}
		}
		if n := q.Len(); n != 0 {
			t.Errorf("%v: Len after Close = %d; want 0", q, n)
		}
		if s := q.Stats(); !reflect.DeepEqual(s, mpq.Stats{}) {
			t.Errorf("%v: Stats after Close = %+v; want the zero Stats", q, s)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	anon, err := mpq.New(&mpq.Options{Capacity: badCap})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	for _, o := range []mpq.Options{
		{Capacity: -1},
		{Capacity: -badCap},
		{MaxMessage: -1},
		{Capacity: badCap, MaxMessage: badCap + 1},
		{Capacity: badCap, MaxMessage: badCap}, // no room for the record header
		{Capacity: 1 << 41},
		{MaxMessage: 1 << 33},
		{Mode: os.ModeSetuid | 0o600},
		{Mode: os.ModeSetgid | 0o600},
		{Mode: os.ModeSticky | 0o600},
		{Mode: os.ModeDir | 0o700},
		{Mode: os.ModeSymlink},
	} {
		o.Dir = dir
		if q, err := mpq.Open("q", &o); !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("Open with %+v: got %v; want %v", o, err, mpq.ErrInvalidOptions)
			if err == nil {
				q.Close()
				mpq.Remove("q", &mpq.Options{Dir: dir})
			}
		}
		if q, err := mpq.Create("q", &o); !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("Create with %+v: got %v; want %v", o, err, mpq.ErrInvalidOptions)
			if err == nil {
				q.Close()
				mpq.Remove("q", &mpq.Options{Dir: dir})
			}
		}
		o.Dir = ""
		if q, err := mpq.New(&o); !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("New with %+v: got %v; want %v", o, err, mpq.ErrInvalidOptions)
			if err == nil {
				q.Close()
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid options left %d entries in the queue directory", len(entries))
	}
	if err := anon.GetBatch(context.Background(), nil, 1); !errors.Is(err, mpq.ErrInvalidOptions) {
		t.Errorf("GetBatch into a nil Batch: got %v; want %v", err, mpq.ErrInvalidOptions)
	}
}

func TestExistence(t *testing.T) {
	dir := t.TempDir()
	opts := &mpq.Options{Dir: dir, Capacity: badCap}
	if _, err := mpq.Open("missing", &mpq.Options{Dir: dir, NoCreate: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing, NoCreate): got %v; want %v", err, fs.ErrNotExist)
	}
	if _, err := mpq.Open("missing", &mpq.Options{Dir: filepath.Join(dir, "nodir"), NoCreate: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing, NoCreate) in a missing directory: got %v; want %v", err, fs.ErrNotExist)
	}
	if err := mpq.Remove("missing", opts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(missing): got %v; want %v", err, fs.ErrNotExist)
	}
	q, err := mpq.Create("q", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := mpq.Create("q", opts); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of an existing queue: got %v; want %v", err, fs.ErrExist)
	}
	if err := q.TryPut([]byte("survives Remove")); err != nil {
		t.Fatal(err)
	}
	if err := mpq.Remove("q", opts); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := mpq.Remove("q", opts); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Remove: got %v; want %v", err, fs.ErrNotExist)
	}
	if _, err := mpq.Open("q", &mpq.Options{Dir: dir, NoCreate: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(NoCreate) after Remove: got %v; want %v", err, fs.ErrNotExist)
	}
	if m, err := q.TryGet(); err != nil || string(m) != "survives Remove" {
		t.Errorf("TryGet on a removed queue = %q, %v; want the message", m, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the queue directory holds %d entries; want none (no temporary files left)", len(entries))
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode, want os.FileMode
	}{
		{0, 0o600},
		{0o640, 0o640},
		{0o666, 0o666}, // exactly, whatever the umask
		{0o400, 0o400},
	} {
		q, err := mpq.Create("m", &mpq.Options{Dir: dir, Capacity: badCap, Mode: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		if got := fileMode(t, filepath.Join(dir, "m.mpq")); got != tc.want {
			t.Errorf("Mode %v: file mode %v; want %v", tc.mode, got, tc.want)
		}
		q.Close()
		if err := mpq.Remove("m", &mpq.Options{Dir: dir}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDefaultDir checks the per-user default directory: created 0700 with
// 0600 files, and refused when it is open to others or not a directory,
// whether the queue must be created or exists already.
func TestDefaultDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", base)
	dir := filepath.Join(base, "mpq")

	q, err := mpq.Open("sec", &mpq.Options{Capacity: badCap})
	if err != nil {
		t.Fatalf("Open in the default directory: %v", err)
	}
	if err := q.TryPut([]byte("secret")); err != nil {
		t.Fatal(err)
	}
	q.Close()
	if got := fileMode(t, dir); got != os.ModeDir|0o700 {
		t.Errorf("default directory mode %v; want %v", got, os.ModeDir|0o700)
	}
	if got := fileMode(t, filepath.Join(dir, "sec.mpq")); got != 0o600 {
		t.Errorf("queue file mode %v; want %v", got, os.FileMode(0o600))
	}
	// Opening it again by name finds the message.
	q, err = mpq.Open("sec", &mpq.Options{NoCreate: true})
	if err != nil {
		t.Fatalf("Open(NoCreate) in the default directory: %v", err)
	}
	if m, err := q.TryGet(); err != nil || string(m) != "secret" {
		t.Errorf("TryGet = %q, %v; want the message", m, err)
	}
	q.Close()

	// Someone else's directory, planted where the default one goes.
	other := filepath.Join(base, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if q, err := mpq.Create("sec", &mpq.Options{Dir: other, Capacity: badCap}); err != nil {
		t.Fatal(err)
	} else {
		q.Close()
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T)
	}{
		{"mode 0777", func(t *testing.T) { mustChmod(t, dir, 0o777) }},
		{"mode 0750", func(t *testing.T) { mustChmod(t, dir, 0o750) }},
		{"mode 0701", func(t *testing.T) { mustChmod(t, dir, 0o701) }},
		{"symlink to a private directory", func(t *testing.T) {
			mustRename(t, dir, dir+".away")
			if err := os.Symlink(other, dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"a regular file", func(t *testing.T) {
			mustRename(t, dir, dir+".away")
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			defer restoreDir(t, dir)
			for _, name := range []string{"new", "sec"} { // missing, existing
				for _, noCreate := range []bool{false, true} {
					q, err := mpq.Open(name, &mpq.Options{Capacity: badCap, NoCreate: noCreate})
					if err == nil {
						q.Close()
						t.Errorf("Open(%q, NoCreate %v) in a default directory that is %s succeeded; want an error", name, noCreate, tc.name)
					}
				}
				if q, err := mpq.Create(name, &mpq.Options{Capacity: badCap}); err == nil {
					q.Close()
					t.Errorf("Create(%q) in a default directory that is %s succeeded; want an error", name, tc.name)
				}
			}
			if _, err := os.Lstat(filepath.Join(other, "new.mpq")); err == nil {
				t.Errorf("a queue was created through the planted directory")
			}
		})
	}
}

func mustChmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// restoreDir puts the real default directory back as it was.
func restoreDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Lstat(dir + ".away"); err == nil {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		mustRename(t, dir+".away", dir)
	}
	mustChmod(t, dir, 0o700)
	if n := dirEntries(dir); n != 1 {
		t.Errorf("default directory holds %d entries besides lock files; want 1", n)
	}
}

// TestQueueFileSymlink: a queue file that is a symbolic link is refused, and
// nothing is created through a dangling one.
func TestQueueFileSymlink(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	target := badFile(t, elsewhere, "target")
	if err := os.Symlink(target, filepath.Join(dir, "link.mpq")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "created.mpq"), filepath.Join(dir, "dangling.mpq")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"link", "dangling"} {
		for _, noCreate := range []bool{false, true} {
			if q, err := mpq.Open(name, &mpq.Options{Dir: dir, Capacity: badCap, NoCreate: noCreate}); err == nil {
				q.Close()
				t.Errorf("Open(%q, NoCreate %v) through a symbolic link succeeded; want an error", name, noCreate)
			}
		}
		if q, err := mpq.Create(name, &mpq.Options{Dir: dir, Capacity: badCap}); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create(%q) over a symbolic link: got %v; want %v", name, err, fs.ErrExist)
			if err == nil {
				q.Close()
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(elsewhere, "created.mpq")); err == nil {
		t.Errorf("a queue file was created through a dangling symbolic link")
	}
}

// TestGetBatchByteBound: a GetBatch woken by a batch of large messages takes
// only what fits its byte bound (64 KiB for an empty Batch), leaving the
// rest in the queue.
func TestGetBatchByteBound(t *testing.T) {
	q, err := mpq.Open("batch", &mpq.Options{Dir: t.TempDir(), Capacity: 1 << 20, MaxMessage: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var b mpq.Batch
	errc := make(chan error, 1)
	go func() { errc <- q.GetBatch(context.Background(), &b, 0) }()
	time.Sleep(20 * time.Millisecond) // let it block on the empty queue
	big := make([]byte, 60<<10)
	if _, err := q.PutBatch(context.Background(), [][]byte{big, big, big}); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range b.Len() {
		total += len(b.Message(i))
	}
	if b.Len() != 1 || total != len(big) || q.Len() != 2 {
		t.Errorf("GetBatch took %d messages, %d bytes, leaving %d; want 1, %d, 2", b.Len(), total, q.Len(), len(big))
	}
}

// TestAppendGetKeepsDst: a wait that ends without a message returns the
// caller's buffer unchanged, as an Append function should.
func TestAppendGetKeepsDst(t *testing.T) {
	q, err := mpq.Open("keep", &mpq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	dst := append(make([]byte, 0, 64), "prefix"...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	got, err := q.AppendGet(ctx, dst)
	if !errors.Is(err, context.DeadlineExceeded) || string(got) != "prefix" || cap(got) != 64 {
		t.Errorf("AppendGet on an empty queue = %q (cap %d), %v; want %q (cap 64), %v", got, cap(got), err, "prefix", context.DeadlineExceeded)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if got, err = q.AppendGet(ctx, dst); err != context.Canceled || string(got) != "prefix" {
		t.Errorf("AppendGet with a cancelled context = %q, %v; want %q, %v", got, err, "prefix", context.Canceled)
	}
}

// A message over the maximum gets an error that says both sizes and names
// the option to change, and still matches ErrTooLarge; every way of
// putting says the same.
func TestTooLargeMessage(t *testing.T) {
	ctx := context.Background()
	q := badQueue(t, t.TempDir(), "big")
	defer q.Close()
	anon, err := mpq.New(&mpq.Options{Capacity: badCap, MaxMessage: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	big := make([]byte, 101)
	for _, tc := range []struct {
		name string
		op   func() error
		want []string // in the message
	}{
		{"Put", func() error { return q.Put(ctx, big) }, []string{"message of 101 bytes", "queue big takes is 100", "Options.MaxMessage"}},
		{"TryPut", func() error { return q.TryPut(big) }, []string{"message of 101 bytes", "queue big takes is 100", "Options.MaxMessage"}},
		{"Put anonymous", func() error { return anon.Put(ctx, big) }, []string{"message of 101 bytes", "anonymous queue takes is 100", "Options.MaxMessage"}},
		{"PutBatch", func() error { _, err := q.PutBatch(ctx, [][]byte{big}); return err }, []string{"message 0 of the batch of 101 bytes", "is 100", "Options.MaxMessage"}},
		{"PutBatch third", func() error {
			_, err := q.PutBatch(ctx, [][]byte{[]byte("a"), []byte("b"), make([]byte, 5000)})
			return err
		}, []string{"message 2 of the batch of 5000 bytes", "is 100", "Options.MaxMessage"}},
		{"TypedQueue.Put", func() error { return mpq.QueueOf[[]byte](q, mpq.Raw).Put(ctx, big) }, []string{"message of 101 bytes", "is 100", "Options.MaxMessage"}},
		{"TypedQueue.TryPut", func() error { return mpq.QueueOf[string](q, mpq.Raw).TryPut(string(big)) }, []string{"message of 101 bytes", "is 100", "Options.MaxMessage"}},
	} {
		err := tc.op()
		if !errors.Is(err, mpq.ErrTooLarge) {
			t.Errorf("%s: got %v; want %v", tc.name, err, mpq.ErrTooLarge)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %q; want it to say %q", tc.name, err, w)
			}
		}
	}
	if n := q.Len(); n != 0 {
		t.Errorf("Len after the refused Puts: got %d; want 0", n)
	}
}
