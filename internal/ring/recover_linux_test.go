package ring

import (
	"syscall"
	"testing"
)

// TestRecoverPadsLongStretch: a damaged stretch longer than a record
// header's 32-bit length can say (a ring over 4 GiB, truncated, say) is
// padded over with records Recover and Get can walk, each within the
// header's range. The ring is an anonymous mapping that is never touched
// but for the records written: it costs no memory.
func TestRecoverPadsLongStretch(t *testing.T) {
	const capacity = 8 << 30
	size := MinSize(capacity)
	mem, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot map %d bytes: %v", size, err)
	}
	defer syscall.Munmap(mem)
	if err := Init(mem, Geometry{Capacity: capacity, MaxMessage: 1 << 20, Durable: true}); err != nil {
		t.Fatal(err)
	}
	r, err := Attach(mem, size, newEnv(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ p, q uint64 }{
		{0, 5 << 30},
		{16, 16 + 4<<30},
		{capacity - 1<<30, capacity + 6<<30}, // across the end of the ring
	} {
		r.padOver(s.p, s.q)
		for p := s.p; p < s.q; {
			h, n, ok := r.intact(p, s.q)
			if !ok || headerState(h) != statePad {
				t.Fatalf("padOver(%d, %d): no intact padding record at %d (header %#x)", s.p, s.q, p, loadHeader(r.data, p&r.mask))
			}
			p += n
		}
	}
}
