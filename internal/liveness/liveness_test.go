package liveness_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/liveness"
)

const slots = 8

func off(slot int) int64 { return int64(slot) * 64 }

func newFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "q"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestHelperProcess attaches to the file named by LIVENESS_FILE, prints its
// slot and waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("LIVENESS_FILE")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Exit(2)
	}
	tb, err := liveness.Attach(f, slots, off)
	if err != nil {
		os.Exit(3)
	}
	os.Stdout.WriteString("slot " + string(rune('0'+tb.Slot())) + "\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestSlotsAreExclusiveAndReleased(t *testing.T) {
	f := newFile(t)
	a, err := liveness.Attach(f, slots, off)
	if err != nil {
		t.Fatal(err)
	}
	b, err := liveness.Attach(f, slots, off)
	if err != nil {
		t.Fatal(err)
	}
	if a.Slot() == b.Slot() {
		t.Fatalf("two attachments share slot %d", a.Slot())
	}
	if !b.Held(a.Slot()) || !a.Held(b.Slot()) {
		t.Fatalf("attachments of one process must see each other: Held(%d)=%v Held(%d)=%v",
			a.Slot(), b.Held(a.Slot()), b.Slot(), a.Held(b.Slot()))
	}
	if b.Held(slots - 1) {
		t.Errorf("Held(%d) of an unused slot = true", slots-1)
	}
	a.Close()
	if b.Held(a.Slot()) {
		t.Errorf("slot %d still held after Close", a.Slot())
	}
	c, err := liveness.Attach(f, slots, off)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Slot() != a.Slot() {
		t.Errorf("new attachment took slot %d; want the freed slot %d", c.Slot(), a.Slot())
	}
	b.Close()
}

func TestTableFull(t *testing.T) {
	f := newFile(t)
	for i := 0; i < slots; i++ {
		tb, err := liveness.Attach(f, slots, off)
		if err != nil {
			t.Fatalf("attachment %d: %v", i, err)
		}
		defer tb.Close()
	}
	_, err := liveness.Attach(f, slots, off)
	if !errors.Is(err, liveness.ErrNoSlot) {
		t.Fatalf("attach to a full table: got %v; want ErrNoSlot", err)
	}
	if want := fmt.Sprintf("all %d slots", slots); !strings.Contains(err.Error(), want) {
		t.Errorf("attach to a full table: %v; want it to say %q", err, want)
	}
}

// TestKilledProcessReleasesSlot: the kernel drops a SIGKILLed process's lock.
func TestKilledProcessReleasesSlot(t *testing.T) {
	f := newFile(t)
	me, err := liveness.Attach(f, slots, off)
	if err != nil {
		t.Fatal(err)
	}
	defer me.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "LIVENESS_FILE="+f.Name())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || !strings.HasPrefix(string(buf), "slot ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v", buf, err)
	}
	slot := int(buf[5] - '0')
	if !me.Held(slot) {
		t.Fatalf("child's slot %d not held while it runs", slot)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if me.Held(slot) {
		t.Fatalf("slot %d still held after the child was killed", slot)
	}
}
