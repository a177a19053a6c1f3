package mpq_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("stall", runStall)
}

// runStall connects MPQ_TEST_N times to the socket MPQ_TEST_SOCK and says
// nothing, then once more and sends 3 bytes of a reply; on each it waits
// for the listener's hello (proof that its handshake started), or for the
// listener to drop it. It says "stalled H" (how many hellos came) and
// holds every connection open until it is killed.
func runStall() error {
	var conns []net.Conn
	hellos := 0
	n := testutil.EnvInt("MPQ_TEST_N", 3)
	for i := range n + 1 {
		c, err := net.Dial("unix", os.Getenv("MPQ_TEST_SOCK"))
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if i == n {
			c.Write([]byte("MPQ")) // a partial reply
		}
	}
	for _, c := range conns {
		if _, err := io.ReadFull(c, make([]byte, 56)); err == nil {
			hellos++
		}
	}
	testutil.Say("stalled %d", hellos)
	testutil.BlockForever()
	return nil
}

// acceptConn calls Accept until it returns a connection, and fails the
// test if an error is not one that a dropped stalled peer gives.
func acceptConn(t *testing.T, ctx context.Context, l *mpq.Listener) *mpq.Conn {
	t.Helper()
	for {
		c, err := l.Accept(ctx)
		if err == nil {
			return c
		}
		if !errors.Is(err, mpq.ErrHandshake) || !strings.Contains(err.Error(), "MaxHandshakes") {
			t.Fatalf("Accept: got %v; want a connection, or a stalled peer dropped for it", err)
		}
	}
}

// Stalled peers (silent ones and one stopped 3 bytes into its reply,
// holding their handshakes open in another process) delay neither the
// handshake of a real dialer, in a third process with a short timeout, nor
// Accept: the dialer connects and talks, whether the stalled peers fit in
// MaxHandshakes or flood past it.
func TestListenStalledPeers(t *testing.T) {
	testutil.CheckGoroutines(t)
	for _, tc := range []struct {
		name    string
		max     int // MaxHandshakes; 0 for the default
		stalled int // silent connections, besides the partial one
	}{
		{"within the bound", 0, 8},
		{"past the bound", 4, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := ctxT(t, 60*time.Second)
			// The stalled peers' handshakes last until the test ends.
			l := listen(t, "dos", &mpq.ListenOptions{Dir: dir, Key: []byte("k"), MaxHandshakes: tc.max, HandshakeTimeout: time.Hour})
			stall := testutil.Start(t, "stall", testutil.Env("MPQ_TEST_SOCK="+l.Path(), "MPQ_TEST_N="+strconv.Itoa(tc.stalled)))
			got := stall.Expect("stalled", 30*time.Second)
			if tc.max == 0 && got != "stalled "+strconv.Itoa(tc.stalled+1) {
				t.Fatalf("%s: got %q; want every stalled handshake started", stall, got)
			}
			d := testutil.Start(t, "dialer", testutil.Env("MPQ_TEST_DIR="+dir, "MPQ_TEST_LISTEN=dos", "MPQ_TEST_KEY=k", "MPQ_TEST_TIMEOUT_MS=3000"))
			if line := d.Expect("", 30*time.Second); line != "connected" {
				t.Fatalf("the dialer behind the stalled peers: got %q; want connected", line)
			}
			c := acceptConn(t, ctx, l)
			defer c.Close()
			if err := c.Send(ctx, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Recv(ctx); err != nil || string(got) != "hi" {
				t.Fatalf("echo: got %q, %v; want hi", got, err)
			}
			c.Close()
			d.Succeed(30 * time.Second)
			stall.Kill()
		})
	}
}

// Close with handshakes in flight (stalled peers) and a connection no
// Accept took returns, ends them all, and leaves no goroutine and no
// socket or ring descriptor behind; the dialer whose connection was never
// taken sees EOF.
func TestListenCloseInFlight(t *testing.T) {
	testutil.CheckGoroutines(t)
	dir := t.TempDir()
	before := listenerFDs(t)
	l, err := mpq.Listen("inflight", &mpq.ListenOptions{Dir: dir, Key: []byte("k"), HandshakeTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stall := testutil.Start(t, "stall", testutil.Env("MPQ_TEST_SOCK="+l.Path(), "MPQ_TEST_N=10"))
	stall.Expect("stalled 11", 30*time.Second)
	d := testutil.Start(t, "dialer", testutil.Env("MPQ_TEST_DIR="+dir, "MPQ_TEST_LISTEN=inflight", "MPQ_TEST_KEY=k"))
	d.Expect("connected", 30*time.Second)
	if got := listenerFDs(t); len(got) <= len(before) {
		t.Fatalf("descriptors with the handshakes in flight: got %d; want more than the %d before", len(got), len(before))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := testutil.FDDiff(before, listenerFDs(t)); len(diff) > 0 {
		t.Errorf("descriptors left after Close: %v", diff)
	}
	d.Succeed(30 * time.Second) // EOF: the connection was closed
	if _, err := l.Accept(context.Background()); !errors.Is(err, mpq.ErrClosed) {
		t.Errorf("Accept after Close: got %v; want ErrClosed", err)
	}
	stall.Kill()
}

// listenerFDs returns the descriptors of this process that a listener
// makes: sockets and the rings' memfds (not the pipes and files of the
// helper processes).
func listenerFDs(t *testing.T) map[int]string {
	t.Helper()
	fds, err := testutil.OpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	for fd, what := range fds {
		if !strings.HasPrefix(what, "socket:") && !strings.HasPrefix(what, "/memfd:") {
			delete(fds, fd)
		}
	}
	return fds
}
