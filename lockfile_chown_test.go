//go:build linux

package mpq_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestLockFileChownedQueue: root makes a queue and gives its file to
// another user (chown), the usual way to provision a service's queue. The
// next Open by root gives the lock file to the queue file's owner too, who
// can then open the queue.
func TestLockFileChownedQueue(t *testing.T) {
	uid, gid := testutil.Nobody(t)
	dir := testutil.Public(t)
	q, err := mpq.Create("q", &mpq.Options{Dir: dir, Mode: 0o600, Capacity: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if err := os.Chown(filepath.Join(dir, "q.mpq"), uid, gid); err != nil {
		t.Fatal(err)
	}
	// Root opens it once more: that is what an admin would try.
	if q, err = mpq.Open("q", &mpq.Options{Dir: dir, NoCreate: true}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	c := testutil.Start(t, "attach", namedQueue(dir, "q"), testutil.AsUser(uid, gid), testutil.Stdin())
	if got := c.Expect("attached", 30*time.Second); got != "attached" {
		t.Fatalf("the queue file's owner opening it: %q; want attached (%s)", got, c.Diag())
	}
	c.CloseStdin()
}
