//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// mpqOutput runs the real binary with args in the queue directory dir and
// returns its exit status, standard output and standard error.
func mpqOutput(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpqBin, append([]string{"--dir", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("mpq %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// freeBytes is what statfs(2) says this user may still allocate in dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// stat, ls and serve show the file system a queue is on, its size and free
// space, and flag a queue whose file has a hole (no storage for part of
// it), where the library would reserve the rest at the next open.
func TestQueueFileSystem(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	createQueue(t, "j", &mpq.Options{Dir: dir, Capacity: 256 << 10}).Close()
	path := filepath.Join(dir, "j.mpq")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fsLine := func() string {
		return fmt.Sprintf("tmpfs at %s: 4.0 MiB, %s free", dir, humanize.IBytes(uint64(freeBytes(t, dir))))
	}
	check := func(backed bool) {
		t.Helper()
		size, flags, state := humanize.IBytes(uint64(fi.Size()))+", all of it backed", "-", "ok"
		if !backed {
			size, flags, state = humanize.IBytes(uint64(fi.Size()))+", NOT all of it backed: a sparse file", "not backed (see file size)", "not backed"
		}
		code, out, errOut := mpqOutput(t, dir, "stat", "j")
		for _, want := range []string{"file size    " + size, "file system  " + fsLine() + "\n", "flags        " + flags + "\n"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("mpq stat j (backed %v): exit %d, stderr %q, stdout\n%s\nwant a line with %q", backed, code, errOut, out, want)
			}
		}
		code, out, errOut = mpqOutput(t, dir, "ls")
		if want := "file system of " + dir + ": " + fsLine() + "\n"; code != 0 || !strings.Contains(out, want) ||
			!regexp.MustCompile(`(?m)^j .* `+state+`$`).MatchString(out) {
			t.Errorf("mpq ls (backed %v): exit %d, stderr %q, stdout\n%s\nwant %q and state %q", backed, code, errOut, out, want, state)
		}
		code, out, errOut = mpqOutput(t, dir, "stat", "j", "--json")
		var j queueJSON
		if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil {
			t.Fatalf("mpq stat j --json: exit %d, %v, stderr %q", code, err, errOut)
		}
		want := fsJSON{Dir: dir, Mount: dir, Type: "tmpfs", Size: 4 << 20, Free: freeBytes(t, dir)}
		if j.FileSize != fi.Size() || j.Backed == nil || *j.Backed != backed || j.FileSystem == nil || *j.FileSystem != want {
			t.Errorf("mpq stat j --json: file_size %d, backed %v, filesystem %+v; want %d, %v, %+v", j.FileSize, j.Backed, j.FileSystem, fi.Size(), backed, want)
		}
		// The metrics of mpq serve.
		labels := fmt.Sprintf(`dir=%q,fstype="tmpfs",mountpoint=%q`, dir, dir)
		metrics := fmt.Sprintf(`
# HELP mpq_filesystem_free_bytes Bytes of the file system the queue directory is on that mpq may still allocate: a new queue reserves all of its file when it is made, and one that does not fit is refused.
# TYPE mpq_filesystem_free_bytes gauge
mpq_filesystem_free_bytes{%s} %d
# HELP mpq_filesystem_size_bytes Size of the file system the queue directory is on, in bytes.
# TYPE mpq_filesystem_size_bytes gauge
mpq_filesystem_size_bytes{%s} %d
# HELP mpq_queue_backed 1 if every byte of the queue's file has storage allocated, else 0 (a sparse file: its pages get storage when first touched, and the next process to open it reserves the rest, or fails).
# TYPE mpq_queue_backed gauge
mpq_queue_backed{queue="j"} %d
# HELP mpq_queue_file_bytes Size of the queue's file in bytes.
# TYPE mpq_queue_file_bytes gauge
mpq_queue_file_bytes{queue="j"} %d
`, labels, freeBytes(t, dir), labels, 4<<20, int(boolValue(backed)), fi.Size())
		var log strings.Builder
		c := newQueueCollector(dir, &log)
		if err := testutil.CollectAndCompare(c, strings.NewReader(metrics),
			"mpq_filesystem_free_bytes", "mpq_filesystem_size_bytes", "mpq_queue_backed", "mpq_queue_file_bytes"); err != nil {
			t.Errorf("metrics (backed %v): %v", backed, err)
		}
		if log.Len() != 0 {
			t.Errorf("serve log: %q", log.String())
		}
	}
	check(true)

	// A hole in the ring, as a sparse copy or fallocate --punch-hole
	// leaves: the file keeps its size, the file system gets the room back.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := freeBytes(t, dir)
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, fi.Size()/2, 64<<10)
	f.Close()
	if err != nil {
		t.Fatalf("punch a hole into %s: %v", path, err)
	}
	if freeBytes(t, dir) <= before {
		t.Fatalf("punching a hole freed nothing (%d bytes free before, %d after)", before, freeBytes(t, dir))
	}
	check(false)
}
