package mpq_test

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("stale-listener", runStaleListener)
}

// runStaleListener says "ready", waits for a line on standard input, then
// Listens on MPQ_TEST_LISTEN in MPQ_TEST_DIR. It says "exist" if that
// fails with fs.ErrExist, and exits; "won" if it listens, and then accepts
// connections until its standard input ends.
func runStaleListener() error {
	in := bufio.NewScanner(os.Stdin)
	testutil.Say("ready")
	in.Scan()
	l, err := mpq.Listen(os.Getenv("MPQ_TEST_LISTEN"), &mpq.ListenOptions{Dir: os.Getenv("MPQ_TEST_DIR")})
	if errors.Is(err, fs.ErrExist) {
		testutil.Say("exist")
		return nil
	}
	if err != nil {
		return err
	}
	testutil.Say("won")
	go func() {
		for {
			c, err := l.Accept(context.Background())
			if errors.Is(err, mpq.ErrClosed) {
				return
			}
			if err == nil {
				c.Close()
			}
		}
	}()
	for in.Scan() {
	}
	return l.Close()
}

// Several processes Listen on the same stale name at once: exactly one
// wins, the others get fs.ErrExist, and the winner's socket file is still
// in place and accepts. (Before the replace was serialized, a loser could
// remove the winner's fresh socket and link its own.)
func TestListenStaleRace(t *testing.T) {
	const procs, rounds = 6, 5
	for round := range rounds {
		dir := t.TempDir()
		path := filepath.Join(dir, "race.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close() // a socket file whose listener is gone
		var children []*testutil.Child
		for range procs {
			c := testutil.Start(t, "stale-listener", testutil.Stdin(), testutil.Env("MPQ_TEST_DIR="+dir, "MPQ_TEST_LISTEN=race"))
			children = append(children, c)
		}
		for _, c := range children {
			c.Expect("ready", 30*time.Second)
		}
		for _, c := range children {
			c.Send("go")
		}
		var winners []*testutil.Child
		for _, c := range children {
			switch got := c.Expect("", 30*time.Second); got {
			case "won":
				winners = append(winners, c)
			case "exist":
				c.Succeed(30 * time.Second)
			default:
				t.Fatalf("round %d: %v: got %q; want won or exist", round, c, got)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d processes listen on the name; want 1", round, len(winners))
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSocket == 0 {
			t.Fatalf("round %d: the winner's socket file: got %v, %v", round, fi, err)
		}
		d, err := mpq.Dial(ctxT(t, 30*time.Second), "race", &mpq.DialOptions{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: Dial of the winner: %v", round, err)
		}
		d.Close()
		winners[0].CloseStdin()
		winners[0].Succeed(30 * time.Second)
	}
}
