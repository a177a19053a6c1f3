package mpq_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
)

// fuzzFileHang bounds one fuzz case: a few dozen operations on a 4 KiB queue.
const fuzzFileHang = 10 * time.Second

var (
	templateOnce sync.Once
	templateFile []byte
	templateErr  error
)

// queueTemplate returns the bytes of a closed queue file with a 4 KiB ring
// that has wrapped and holds a few messages of assorted sizes.
func queueTemplate(tb testing.TB) []byte {
	templateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mpq-fuzz-")
		if err != nil {
			templateErr = err
			return
		}
		defer os.RemoveAll(dir)
		q, err := mpq.Create("t", &mpq.Options{Dir: dir, Capacity: badCap, MaxMessage: 1024})
		if err != nil {
			templateErr = err
			return
		}
		for i := 0; i < 40; i++ {
			if err := q.TryPut(make([]byte, i*13%200)); err != nil {
				if _, err := q.TryGet(); err != nil {
					templateErr = err
				}
			}
		}
		q.Close()
		templateFile, templateErr = os.ReadFile(filepath.Join(dir, "t.mpq"))
	})
	if templateErr != nil {
		tb.Fatalf("queue template: %v", templateErr)
	}
	return templateFile
}

// allowedErr reports whether err is nil or one that the operations may
// return on a damaged file or a canceled context.
func allowedErr(err error) bool {
	if err == nil {
		return true
	}
	for _, s := range []error{mpq.ErrCorrupt, mpq.ErrIncompatible, mpq.ErrEmpty, mpq.ErrFull,
		mpq.ErrSealed, mpq.ErrTooLarge, io.EOF, context.Canceled} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzOpenFile writes a real queue file with fuzz bytes over its header and
// part of its ring, and with a fuzz length, then opens it and operates on
// it: nothing may panic, hang or fault (a ring larger than the file must be
// refused: mapping past the end would SIGBUS), and every error must be one
// of the package's.
func FuzzOpenFile(f *testing.F) {
	tmpl := queueTemplate(f)
	hdr := tmpl[:640] // identity and every hot word
	ringStart := tmpl[ring.RingOffset : ring.RingOffset+256]
	ops := []byte{0, 9, 1, 2, 3, 4, 5, 6, 0, 1, 7, 1, 2, 0}
	f.Add([]byte(nil), []byte(nil), uint16(0), uint32(0), ops)
	f.Add(hdr, ringStart, uint16(0), uint32(0), ops)
	f.Add(hdr, ringStart, uint16(4000), uint32(0), ops)
	f.Add([]byte("not a queue at all"), []byte(nil), uint16(0), uint32(18), ops)
	f.Add([]byte(nil), []byte(nil), uint16(0), uint32(ring.PageSize), ops)
	f.Add([]byte(nil), []byte(nil), uint16(0), uint32(len(tmpl)-1), ops)
	f.Add([]byte(nil), []byte(nil), uint16(0), uint32(len(tmpl)+100), ops)
	f.Add([]byte("MPQRING\x00\x02\x00\x00\x00"), []byte(nil), uint16(0), uint32(0), ops)                 // version 2, older
	f.Add([]byte("MPQRING\x00\x01\x00\x00\x00\x04\x03\x02\x01"), []byte(nil), uint16(0), uint32(0), ops) // byte order
	big := append([]byte(nil), hdr...)
	big[16+2] = 1 // capacity 4096 + 64 KiB: not a power of two
	f.Add(big, []byte(nil), uint16(0), uint32(0), ops)
	big = append([]byte(nil), hdr...)
	big[16+1], big[16+2] = 0, 2 // capacity 128 KiB: past the end of the file
	f.Add(big, []byte(nil), uint16(0), uint32(0), ops)
	f.Add([]byte(nil), make([]byte, 64), uint16(8), uint32(0), ops)
	f.Fuzz(func(t *testing.T, hdr, ringBytes []byte, ringAt uint16, length uint32, ops []byte) {
		file := append([]byte(nil), tmpl...)
		copy(file, hdr)
		for i, b := range ringBytes {
			file[ring.RingOffset+(int(ringAt)+i)%badCap] = b
		}
		if length != 0 {
			n := int(length) % (len(tmpl) + 8192)
			if n <= len(file) {
				file = file[:n]
			} else {
				file = append(file, make([]byte, n-len(file))...)
			}
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f.mpq"), file, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			fuzzQueueOps(t, dir, ops)
		}()
		select {
		case <-done:
		case <-time.After(fuzzFileHang):
			t.Fatalf("operations on the file hang")
		}
	})
}

func fuzzQueueOps(t *testing.T, dir string, ops []byte) {
	q, err := mpq.Open("f", &mpq.Options{Dir: dir, NoCreate: true})
	if err != nil {
		if !errors.Is(err, mpq.ErrCorrupt) && !errors.Is(err, mpq.ErrIncompatible) {
			t.Errorf("Open: got %v; want nil, %v or %v", err, mpq.ErrCorrupt, mpq.ErrIncompatible)
		}
		return
	}
	defer func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(what string, err error) bool {
		if !allowedErr(err) {
			t.Errorf("%s: got %v; want nil or a package error", what, err)
			return false
		}
		return true
	}
	var b mpq.Batch
	for i, op := range ops {
		if i == 32 {
			break
		}
		size := int(op) * 5
		var ok bool
		switch op % 8 {
		case 0:
			ok = check("TryPut", q.TryPut(make([]byte, size)))
		case 1:
			_, err := q.TryGet()
			ok = check("TryGet", err)
		case 2:
			ok = check("Len", nil)
			if n := q.Len(); n < 0 {
				t.Errorf("Len = %d", n)
			}
		case 3:
			s := q.Stats()
			ok = check("Stats", nil)
			if s.Len < 0 || s.Used < 0 || s.Used > s.Capacity {
				t.Errorf("Stats = %+v", s)
			}
		case 4:
			_, err := q.PutBatch(canceled, [][]byte{make([]byte, size), []byte("x")})
			ok = check("PutBatch", err)
		case 5:
			ok = check("GetBatch", q.GetBatch(canceled, &b, int(op%4)))
		case 6:
			_, err := q.Get(canceled)
			ok = check("Get", err)
		case 7:
			ok = check("Seal", q.Seal())
		}
		if !ok {
			return
		}
	}
}
