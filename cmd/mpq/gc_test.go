package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mpq-go/mpq"
)

// gc removes socket files nobody listens on and temporary files of dead
// creators, and keeps live sockets and everything else.
func TestGcSocketsAndTemporaries(t *testing.T) {
	dir := t.TempDir()
	// A live Listener's socket, and a stale one (its listener closed
	// without removing it, as a killed process leaves it).
	l, err := mpq.Listen("live", &mpq.ListenOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "stale.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	// A temporary file of a creator that died (a PID that is not running:
	// a child that has exited) and one of a live creator (this process).
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, ".q.mpq."+strconv.Itoa(done.Process.Pid)+".1f.tmp")
	alive := filepath.Join(dir, ".q.mpq."+strconv.Itoa(os.Getpid())+".2e.tmp")
	other := filepath.Join(dir, "notes.tmp")
	for _, p := range []string{dead, alive, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, err := exec.Command(mpqBin, "gc", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mpq gc: %v\n%s", err, out)
	}
	for _, want := range []string{"removed stale socket stale.sock", "removed abandoned temporary file " + filepath.Base(dead)} {
		if !strings.Contains(string(out), want) {
			t.Errorf("gc output lacks %q:\n%s", want, out)
		}
	}
	for p, want := range map[string]bool{
		filepath.Join(dir, "stale.sock"): false, dead: false,
		l.Path(): true, alive: true, other: true,
	} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("after gc, %s exists: %v; want %v", filepath.Base(p), err == nil, want)
		}
	}
	// The live listener still accepts.
	if c, err := net.Dial("unix", l.Path()); err != nil {
		t.Errorf("live socket after gc: %v", err)
	} else {
		c.Close()
	}
}
