package mpq_test

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// fdLink is what /proc says descriptor f of this process is.
func fdLink(t *testing.T, f *os.File) string {
	t.Helper()
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// On Linux the label names the memfd, which /proc shows, and Stats,
// InspectFile and a queue opened from the descriptor in another handle
// read it back from there; an unlabelled queue's memfd is named "mpq", as
// ever.
func TestLabelNamesMemfd(t *testing.T) {
	for _, tc := range []struct{ label, link string }{
		{"", "/memfd:mpq (deleted)"},
		{"pool sq: tasks", "/memfd:mpq:pool sq: tasks (deleted)"},
		{"x (deleted)", "/memfd:mpq:x (deleted) (deleted)"},
	} {
		q, err := mpq.New(&mpq.Options{Label: tc.label, Capacity: 4096})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if err := q.TryPut([]byte("m")); err != nil {
			t.Fatal(err)
		}
		f, err := q.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got := fdLink(t, f); got != tc.link {
			t.Errorf("Label %q: got the memfd link %q; want %q", tc.label, got, tc.link)
		}
		if got := q.Stats().Label; got != tc.label {
			t.Errorf("Label %q: got Stats.Label %q; want %q", tc.label, got, tc.label)
		}
		other, err := mpq.OpenFile(f, &mpq.Options{Label: "ignored"})
		if err != nil {
			t.Fatal(err)
		}
		if got := other.Stats().Label; got != tc.label {
			t.Errorf("Label %q: got Stats.Label %q through OpenFile; want %q", tc.label, got, tc.label)
		}
		other.Close()
		// As mpq ls reads it: through /proc/PID/fd/N, a new open file.
		pf, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
		if err != nil {
			t.Fatal(err)
		}
		s, err := mpq.InspectFile(pf)
		pf.Close()
		if err != nil || s.Label != tc.label || s.Name != "" || s.Len != 1 || len(s.Procs) != 1 || s.Procs[0].PID != os.Getpid() {
			t.Errorf("Label %q: InspectFile: got %+v, %v; want label %q, no name, 1 message, this process attached", tc.label, s, err, tc.label)
		}
	}
}

// InspectFile of a memfd named as a queue's that holds no queue is an
// error, not a panic.
func TestInspectFileNotAQueue(t *testing.T) {
	for _, size := range []int{0, 100, 64 << 10} {
		fd, err := unix.MemfdCreate("mpq:fake", unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "memfd:mpq:fake")
		defer f.Close()
		garbage := make([]byte, size)
		for i := range garbage {
			garbage[i] = byte(i*7 + 3)
		}
		if _, err := f.Write(garbage); err != nil {
			t.Fatal(err)
		}
		s, err := mpq.InspectFile(f)
		if !errors.Is(err, mpq.ErrCorrupt) && !errors.Is(err, mpq.ErrIncompatible) {
			t.Errorf("%d bytes of garbage: got %+v, %v; want %v or %v", size, s, err, mpq.ErrCorrupt, mpq.ErrIncompatible)
		}
	}
}
