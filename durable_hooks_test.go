//go:build mpqhooks

package mpq_test

import "testing"

// TestDurableStoppedWriter is TestDurableKilledWriter with the producer
// stopped by the ring's test hook in the middle of a Put, holding the lock
// with half its message copied, when it is killed.
func TestDurableStoppedWriter(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop int // put to stop in
	}{
		{"stopped mid-put", 40},
		{"stopped in the first put", 0},
	} {
		t.Run(tc.name, func(t *testing.T) { killedWriter(t, "put", tc.stop) })
	}
}
