package mpq_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("corrupt-blocked", runCorruptBlocked)
	testutil.Register("corrupt-damage", runCorruptDamage)
	testutil.Register("corrupt-late", runCorruptLate)
}

// Environment of the helpers of the corrupt tests.
const (
	envCorruptOp   = "MPQ_TEST_CORRUPT_OP"   // put: wait for room; get: hold a delivery, then wait for data
	envCorruptPath = "MPQ_TEST_CORRUPT_PATH" // the damager: file to write into
	envCorruptOff  = "MPQ_TEST_CORRUPT_OFF"  // at this offset
	envCorruptHex  = "MPQ_TEST_CORRUPT_HEX"  // these bytes
)

// corruptBattery runs every call a program makes on a queue and returns
// those that did not fail with ErrCorrupt. d, if not nil, is a delivery
// held since before the damage. A call that would wait for good fails
// after a while: a bound, so that a hang is reported, not a timed check.
func corruptBattery(q *mpq.Queue, d *mpq.Delivery) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var bad []string
	check := func(name string, err error) {
		if !errors.Is(err, mpq.ErrCorrupt) {
			bad = append(bad, fmt.Sprintf("%s: %v", name, err))
		}
	}
	check("Put", q.Put(ctx, []byte("x")))
	check("TryPut", q.TryPut([]byte("x")))
	_, err := q.PutBatch(ctx, [][]byte{[]byte("x"), []byte("y")})
	check("PutBatch", err)
	_, err = q.Get(ctx)
	check("Get", err)
	_, err = q.TryGet()
	check("TryGet", err)
	check("GetBatch", q.GetBatch(ctx, new(mpq.Batch), 8))
	_, err = q.Receive(ctx)
	check("Receive", err)
	_, err = q.TryReceive()
	check("TryReceive", err)
	check("Join", q.Join(ctx))
	if d != nil {
		check("Extend", d.Extend(time.Minute))
		check("NackAfter", d.NackAfter(time.Second))
		check("Ack", d.Ack())
	}
	check("Seal", q.Seal())
	if s := q.Stats(); s.Corrupt == "" {
		bad = append(bad, fmt.Sprintf("Stats: Corrupt is empty in %+v", s))
	}
	return bad
}

// runCorruptBlocked opens the queue and blocks in a Put (op put) or, after
// taking a delivery it holds, in a Get (op get); once that returns it says
// how, runs corruptBattery, and closes the queue when told to.
func runCorruptBlocked() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	var d *mpq.Delivery
	switch op := os.Getenv(envCorruptOp); op {
	case "put":
		testutil.Say("blocking")
		err = q.Put(context.Background(), []byte("one too many"))
	case "get":
		if d, err = q.TryReceive(); err != nil {
			return err
		}
		testutil.Say("blocking")
		_, err = q.Get(context.Background())
	default:
		return fmt.Errorf("unknown op %q", op)
	}
	testutil.Say("returned corrupt=%t: %v", errors.Is(err, mpq.ErrCorrupt), err)
	testutil.Say("battery %s", strings.Join(corruptBattery(q, d), "; "))
	bufio.NewScanner(os.Stdin).Scan() // until told to close
	if err := q.Close(); err != nil {
		return err
	}
	testutil.Say("closed")
	return nil
}

// runCorruptDamage writes bytes into a queue file, as any process that may
// write it can: another user's, if the file's mode lets it.
func runCorruptDamage() error {
	off, err := strconv.ParseInt(os.Getenv(envCorruptOff), 10, 64)
	if err != nil {
		return err
	}
	b, err := hex.DecodeString(os.Getenv(envCorruptHex))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(os.Getenv(envCorruptPath), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		return err
	}
	testutil.Say("damaged")
	return nil
}

// runCorruptLate opens a queue found corrupt and runs corruptBattery.
func runCorruptLate() error {
	q, err := openChildQueue()
	if err != nil {
		return err
	}
	defer q.Close()
	testutil.Say("battery %s", strings.Join(corruptBattery(q, nil), "; "))
	return nil
}

// waitAsleep waits until the process pid sleeps in queue name, waiting for
// room (space) or for data.
func waitAsleep(t *testing.T, dir, name string, pid int, space bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		s, err := mpq.Inspect(name, &mpq.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.Procs {
			if p.PID == pid && (space && p.WaitingSpace || !space && p.WaitingData) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never slept in queue %s: %+v", pid, name, s.Procs)
		}
	}
}

// TestCorruptWakesEveryone is the review's case: a producer waits for room
// in a full queue and a consumer for data in an empty one, each in a
// process of its own; a process of another user writes garbage into the
// first queue's record at head and into the second's tail, through the
// files' mode 0666. The blocked calls return ErrCorrupt (the first queue's
// damage found by this process's Get, which no waiter would read), every
// later call in every process does too, Inspect says so; then, with every
// process gone, a durable queue whose record was damaged opens recovered
// and works, one whose positions were damaged fails to open saying to
// remove it, and a queue in memory stays corrupt until it is removed.
func TestCorruptWakesEveryone(t *testing.T) {
	uid, gid := testutil.Nobody(t)
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%t", durable), func(t *testing.T) {
			dir := testutil.Public(t)
			opts := &mpq.Options{Dir: dir, Capacity: 4096, MaxMessage: 256, Mode: 0o666, Durable: durable, Sync: mpq.SyncNever}
			full, err := mpq.Open("full", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { full.Close() }()
			empty, err := mpq.Open("empty", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { empty.Close() }()
			var put []string
			for i := 0; ; i++ {
				m := fmt.Sprintf("message %d", i)
				if err := full.TryPut([]byte(m)); errors.Is(err, mpq.ErrFull) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				put = append(put, m)
			}
			if err := empty.TryPut([]byte("held")); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"full", "empty"} {
				if err := os.Chmod(filepath.Join(dir, name+".mpq"), 0o666); err != nil {
					t.Fatal(err)
				}
			}

			prod := testutil.Start(t, "corrupt-blocked", namedQueue(dir, "full"), testutil.Stdin(), testutil.Env(envCorruptOp+"=put"))
			cons := testutil.Start(t, "corrupt-blocked", namedQueue(dir, "empty"), testutil.Stdin(), testutil.Env(envCorruptOp+"=get"))
			prod.Expect("blocking", 30*time.Second)
			cons.Expect("blocking", 30*time.Second)
			waitAsleep(t, dir, "full", prod.Pid(), true)
			waitAsleep(t, dir, "empty", cons.Pid(), false)

			damage := func(name string, off int64, b []byte) {
				d := testutil.Start(t, "corrupt-damage", testutil.AsUser(uid, gid), testutil.Env(
					envCorruptPath+"="+filepath.Join(dir, name+".mpq"), envCorruptOff+"="+strconv.FormatInt(off, 10),
					envCorruptHex+"="+hex.EncodeToString(b)))
				d.Expect("damaged", 30*time.Second)
				d.Succeed(30 * time.Second)
			}
			garbage := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			damage("full", ring.RingOffset, garbage) // the header of the record at head (position 0)
			damage("empty", durTail, []byte{0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad, 0xde})

			// The consumer finds its queue's tail damaged itself; nobody but
			// a consumer reads the full queue's record at head.
			line := cons.Expect("returned", 30*time.Second)
			if !strings.HasPrefix(line, "returned corrupt=true: ") || !strings.Contains(line, "tail") {
				t.Errorf("blocked Get: %s; want ErrCorrupt about the tail", line)
			}
			_, err = full.TryGet()
			if !errors.Is(err, mpq.ErrCorrupt) || !strings.Contains(err.Error(), "record at 0") {
				t.Fatalf("TryGet of the damaged record: got %v; want %v about the record at 0", err, mpq.ErrCorrupt)
			}
			line = prod.Expect("returned", 30*time.Second)
			for _, w := range []string{"returned corrupt=true: ", "record at 0", fmt.Sprintf("found by process %d", os.Getpid()), "mpq rm --force"} {
				if !strings.Contains(line, w) {
					t.Errorf("blocked Put: %s; want it to say %q", line, w)
				}
			}

			// Every later call, in every process.
			for _, c := range []*testutil.Child{prod, cons} {
				if line := c.Expect("battery", 60*time.Second); line != "battery " {
					t.Errorf("%v: calls that did not fail with ErrCorrupt: %s", c, line)
				}
			}
			for name, q := range map[string]*mpq.Queue{"full": full, "empty": empty} {
				if bad := corruptBattery(q, nil); len(bad) > 0 {
					t.Errorf("%s, here: calls that did not fail with ErrCorrupt: %s", name, strings.Join(bad, "; "))
				}
				late := testutil.Start(t, "corrupt-late", namedQueue(dir, name))
				if line := late.Expect("battery", 60*time.Second); line != "battery " {
					t.Errorf("%s, a process that opened it later: calls that did not fail with ErrCorrupt: %s", name, line)
				}
				late.Succeed(30 * time.Second)
				s, err := mpq.Inspect(name, &mpq.Options{Dir: dir})
				if err != nil || s.Corrupt == "" {
					t.Errorf("Inspect(%s) = Corrupt %q, %v; want what was found", name, s.Corrupt, err)
				}
			}

			// Everyone closes.
			for _, c := range []*testutil.Child{prod, cons} {
				c.Send("close")
				c.Expect("closed", 30*time.Second)
				c.Succeed(30 * time.Second)
			}
			full.Close()
			empty.Close()

			full, err = mpq.Open("full", opts)
			if err != nil {
				t.Fatalf("reopen the queue with the damaged record: %v", err)
			}
			if !durable {
				if err := full.TryPut([]byte("x")); !errors.Is(err, mpq.ErrCorrupt) || !strings.Contains(err.Error(), "removed") {
					t.Errorf("TryPut into the reopened queue in memory: got %v; want %v saying to remove it", err, mpq.ErrCorrupt)
				}
				full.Close()
				if err := mpq.Remove("full", opts); err != nil {
					t.Fatalf("Remove: %v", err)
				}
				if full, err = mpq.Open("full", opts); err != nil {
					t.Fatal(err)
				}
				put = nil
			} else {
				put = put[1:] // the damaged record is dropped
			}
			if s := full.Stats(); s.Corrupt != "" {
				t.Errorf("Stats of the recovered (or new) queue: Corrupt %q", s.Corrupt)
			}
			for _, want := range put {
				got, err := full.TryGet()
				if err != nil || string(got) != want {
					t.Fatalf("TryGet after recovery = %q, %v; want %q", got, err, want)
				}
			}
			if err := full.TryPut([]byte("again")); err != nil {
				t.Fatalf("TryPut after recovery: %v", err)
			}
			if got, err := full.TryGet(); err != nil || string(got) != "again" {
				t.Fatalf("TryGet after recovery = %q, %v", got, err)
			}

			// The damaged tail: recovery cannot repair positions.
			empty, err = mpq.Open("empty", opts)
			if durable {
				if !errors.Is(err, mpq.ErrCorrupt) || !strings.Contains(err.Error(), "mpq rm --force") {
					t.Errorf("reopen the durable queue with a damaged tail: got %v; want %v saying to remove it", err, mpq.ErrCorrupt)
				}
				if err == nil {
					empty.Close()
				}
			} else {
				if err != nil {
					t.Fatalf("reopen the queue in memory with a damaged tail: %v", err)
				}
				if _, err := empty.TryGet(); !errors.Is(err, mpq.ErrCorrupt) {
					t.Errorf("TryGet of the reopened queue in memory: got %v; want %v", err, mpq.ErrCorrupt)
				}
				empty.Close()
			}
			if err := mpq.Remove("empty", opts); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if empty, err = mpq.Open("empty", opts); err != nil {
				t.Fatal(err)
			}
			if err := empty.TryPut([]byte("new")); err != nil {
				t.Errorf("TryPut into the queue made again: %v", err)
			}
		})
	}
}
