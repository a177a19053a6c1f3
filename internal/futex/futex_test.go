package futex_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/futex"
)

func TestWaitReturnsAtOnceIfValueDiffers(t *testing.T) {
	var w uint32 = 1
	start := time.Now()
	futex.Wait(&w, 0, time.Second)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Wait with a stale value slept %v; want an immediate return", d)
	}
}

func TestWaitTimesOut(t *testing.T) {
	var w uint32
	start := time.Now()
	futex.Wait(&w, 0, 20*time.Millisecond)
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Fatalf("Wait returned after %v; want about the 20ms timeout", d)
	}
}

func TestWakeWakesWaiter(t *testing.T) {
	var w uint32
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		for atomic.LoadUint32(&w) == 0 {
			futex.Wait(&w, 0, 10*time.Second)
		}
		done <- time.Since(start)
	}()
	time.Sleep(20 * time.Millisecond)
	atomic.StoreUint32(&w, 1)
	futex.Wake(&w, 1)
	select {
	case d := <-done:
		if d > 5*time.Second {
			t.Fatalf("waiter returned after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken within 5s of Wake")
	}
}
