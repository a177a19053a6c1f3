package natsq_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
)

// The helper process of testKilledConsumer, as os/os_test.go's
// GO_WANT_HELPER_PROCESS: the test binary run again with these set.
const (
	envKillURL = "NATSQ_TEST_KILLED_CONSUMER_URL" // the queue to receive from
	envKillK   = "NATSQ_TEST_KILLED_CONSUMER_K"   // how many messages to hold
)

// TestKilledConsumerHelper is the consumer process that testKilledConsumer
// kills: it receives K messages without acknowledging them, says so on
// stdout, and waits to be killed (or for its parent to go).
func TestKilledConsumerHelper(t *testing.T) {
	rawURL := os.Getenv(envKillURL)
	if rawURL == "" {
		t.Skip("the helper process of KilledConsumer")
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "killed-consumer helper: "+format+"\n", args...)
		os.Exit(2)
	}
	k, err := strconv.Atoi(os.Getenv(envKillK))
	if err != nil {
		fail("%s: %v", envKillK, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	q, err := mpq.OpenURL(ctx, rawURL)
	if err != nil {
		fail("%v", err)
	}
	for range k {
		d, err := q.Receive(ctx)
		if err != nil {
			fail("Receive: %v", err)
		}
		fmt.Printf("held %s %d\n", d.Data(), d.Count())
	}
	fmt.Println("holding")
	io.Copy(io.Discard, os.Stdin) // until the parent kills us, or goes
	fail("not killed")
}

// A consumer process killed while it holds deliveries: they are delivered
// again, to this process, with their counts. Shared memory notices the death
// of the process; NATS waits for the lease (AckWait), so the lease is short
// there and far beyond the wait on shared memory (backend.killedLease).
func testKilledConsumer(t *testing.T, b backend) {
	const k = 3
	u := b.url(newName(t), params{lease: b.killedLease})
	q := openQ(t, u)
	for i := range k + 2 {
		put(t, q, msg(i, 8))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKilledConsumerHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillURL+"="+u, envKillK+"="+strconv.Itoa(k))
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	held := readHeld(t, stdout)
	if len(held) != k {
		cmd.Process.Kill()
		cmd.Wait()
		killed = true
		t.Fatalf("helper held %d messages, want %d; stderr:\n%s", len(held), k, stderr.Bytes())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	err = cmd.Wait()
	killed = true
	if ee, ok := err.(*exec.ExitError); !ok || ee.Exited() {
		t.Fatalf("helper did not die of the signal: %v; stderr:\n%s", err, stderr.Bytes())
	}

	got := map[string]int{}
	for range k + 2 {
		d := receive(t, q)
		got[string(d.Data())] = d.Count()
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	for i := range k + 2 {
		m := string(msg(i, 8))
		c, ok := got[m]
		switch {
		case !ok:
			t.Errorf("%s not delivered again (got %v)", m, got)
		case held[m] && c < 2:
			t.Errorf("%s, held by the killed process, delivered with count %d", m, c)
		}
	}
	sealEmpty(t, q)
}

// readHeld reads what the helper says, a line "held MESSAGE 1" for each
// message it holds until a line "holding", and returns those messages.
func readHeld(t *testing.T, stdout io.Reader) map[string]bool {
	t.Helper()
	held := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "holding" {
			break
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "held" || f[2] != "1" {
			t.Fatalf("helper said %q", line)
		}
		held[f[1]] = true
	}
	return held
}
