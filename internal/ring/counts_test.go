package ring

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestCountsDoNotWaitForLiveHolder: after a recovery set the recount flag,
// reading the counters must not wait for a producer that is alive but
// stopped inside Put (SIGSTOP, a debugger): Len is a read, not a wait.
func TestCountsDoNotWaitForLiveHolder(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	env := newEnv(1)
	r := attachT(t, mem, env, 0)
	other := attachT(t, mem, env, 1) // alive: its slot is held
	if err := put(r, []byte("x")); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint32(r.w.recount, 1)
	atomic.StoreUint32(r.w.prodLock, other.self)
	done := make(chan Counts)
	go func() { c, _ := r.Counts(); done <- c }()
	select {
	case c := <-done:
		if c.Len != 1 {
			t.Errorf("Len while the recount must wait = %d; want 1", c.Len)
		}
	case <-time.After(5 * time.Second):
		atomic.StoreUint32(r.w.prodLock, 0)
		<-done
		t.Fatal("Counts waited for a live lock holder")
	}
	if atomic.LoadUint32(r.w.recount) == 0 {
		t.Error("recount flag cleared although the recount could not run")
	}
	atomic.StoreUint32(r.w.prodLock, 0)
	if c := counts(t, r); c.Len != 1 || atomic.LoadUint32(r.w.recount) != 0 {
		t.Errorf("after the holder released: Len %d, recount flag %d; want 1, 0", c.Len, atomic.LoadUint32(r.w.recount))
	}
}

// TestCountsRecoverDeadHolder: a producer killed after storing puts but
// before storing tail leaves Len one too high; reading the counters finds
// the dead holder, takes its lock over and recounts.
func TestCountsRecoverDeadHolder(t *testing.T) {
	mem := newMem(t, MinCapacity, 100)
	env := newEnv(1)
	r := attachT(t, mem, env, 0)
	dead := attachT(t, mem, env, 1)
	for _, m := range []string{"a", "b"} {
		if err := put(r, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	atomic.AddUint64(r.w.puts, 1) // stored puts, then died before tail
	atomic.StoreUint32(r.w.prodLock, dead.self)
	env.set(1, false)
	if c := counts(t, r); c.Len != 2 {
		t.Fatalf("Len after a producer died inside Put = %d; want 2", c.Len)
	}
	if v := atomic.LoadUint32(r.w.prodLock); v != 0 {
		t.Errorf("producer lock still holds %#x after the recount", v)
	}
	if err := put(r, []byte("c")); err != nil {
		t.Fatalf("Put after the takeover: %v", err)
	}
}
