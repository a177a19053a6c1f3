package mpq_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("listen-then-drop", runListenThenDrop)
}

// runListenThenDrop listens with a key as root, then drops to the uid and
// gid in MPQ_TEST_UID and MPQ_TEST_GID (as a daemon that binds, then gives
// up root, does), says "ready", and says what its Accept returned.
func runListenThenDrop() error {
	uid, _ := strconv.Atoi(os.Getenv("MPQ_TEST_UID"))
	gid, _ := strconv.Atoi(os.Getenv("MPQ_TEST_GID"))
	l, err := mpq.Listen("drop", &mpq.ListenOptions{Dir: os.Getenv("MPQ_TEST_DIR"), Key: []byte("k"), AllowUIDs: []int{0}})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return err
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return err
	}
	testutil.Say("ready")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		testutil.Say("accept: %v", err)
		return nil
	}
	c.Close()
	testutil.Say("accepted")
	return nil
}

// TestListenKeyAfterSetuid: a listener that changes its euid after Listen
// (a daemon that drops root) still completes keyed handshakes: it binds
// into the MACs the credentials its socket took at listen(), which are
// what the dialer sees.
func TestListenKeyAfterSetuid(t *testing.T) {
	uid, gid := testutil.Nobody(t)
	dir := testutil.Public(t)
	l := testutil.Start(t, "listen-then-drop", testutil.Env("MPQ_TEST_DIR="+dir,
		"MPQ_TEST_UID="+strconv.Itoa(uid), "MPQ_TEST_GID="+strconv.Itoa(gid)))
	l.Expect("ready", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := mpq.Dial(ctx, "drop", &mpq.DialOptions{Dir: dir, Key: []byte("k")})
	if err != nil {
		t.Errorf("Dial a listener that dropped root after Listen: got %v; want a connection", err)
	} else {
		c.Close()
	}
	if got := l.Expect("accept", 30*time.Second); !strings.HasPrefix(got, "accepted") {
		t.Errorf("the listener's Accept: got %q; want accepted", got)
	}
	l.Succeed(30 * time.Second)
}
