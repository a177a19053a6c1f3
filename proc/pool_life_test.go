//go:build linux

package proc_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/testutil"
	"github.com/mpq-go/mpq/proc"
)

// gone reports whether process pid no longer exists (not even as a
// zombie).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestPoolLeavesNothing checks that Close and Terminate (the latter in the
// middle of a Map) leave no worker, zombie, descriptor or goroutine.
func TestPoolLeavesNothing(t *testing.T) {
	testutil.CheckGoroutines(t)
	for _, how := range []string{"Close", "Terminate"} {
		t.Run(how, func(t *testing.T) {
			before, err := testutil.OpenFDs()
			if err != nil {
				t.Fatal(err)
			}
			p, err := proc.NewPool(t.Context(), jobTask, &proc.PoolOptions{Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			pids := p.Pids()
			if _, err := p.Map(t.Context(), jobs(100, "", "")); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "Close":
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
			case "Terminate":
				slow := jobs(100, "slow", "")
				for i := range slow {
					slow[i].Wait = time.Hour
				}
				errc := make(chan error, 1)
				go func() {
					_, err := p.Map(context.Background(), slow)
					errc <- err
				}()
				waitFor(t, "tasks in flight", func() bool { return p.Stats().InFlight == 100 })
				if err := p.Terminate(); err != nil {
					t.Fatal(err)
				}
				if err := <-errc; !errors.Is(err, proc.ErrPoolClosed) {
					t.Errorf("Map interrupted by Terminate: %v; want ErrPoolClosed", err)
				}
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("worker %d is still there after %s", pid, how)
				}
			}
			after, err := testutil.OpenFDs()
			if err != nil {
				t.Fatal(err)
			}
			if d := testutil.FDDiff(before, after); len(d) > 0 {
				t.Errorf("descriptors left open after %s: %v", how, d)
			}
			if s := p.Stats(); s.Workers != 0 || s.InFlight != 0 {
				t.Errorf("Stats after %s = %+v", how, s)
			}
			p.Close() // idempotent, after either
			p.Terminate()
		})
	}
}

func init() {
	testutil.Register("pool-parent", func() error {
		p, err := proc.NewPool(context.Background(), jobTask, &proc.PoolOptions{Workers: 2})
		if err != nil {
			return err
		}
		pids := p.Pids()
		testutil.Say("workers %d %d", pids[0], pids[1])
		slow := jobs(10, "slow", "")
		for i := range slow {
			slow[i].Wait = time.Hour
		}
		p.Map(context.Background(), slow)
		return nil
	})
}

// TestPoolParentDies kills a process whose pool is busy: its workers go
// with it.
func TestPoolParentDies(t *testing.T) {
	c := testutil.Start(t, "pool-parent")
	f := strings.Fields(c.Expect("workers ", timeout))
	var pids []int
	for _, s := range f[1:] {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	c.Kill()
	for _, pid := range pids {
		waitFor(t, "worker "+strconv.Itoa(pid)+" gone with its parent", func() bool {
			// Reparented to init (or a subreaper), which reaps it.
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			return err != nil || strings.Contains(string(b), ") Z ")
		})
	}
}

// TestPoolQueuesLabelled checks that a pool's queues are memfds named for
// what they are, which mpq ls, top and stat show.
func TestPoolQueuesLabelled(t *testing.T) {
	newPool(t, squareTask, &proc.PoolOptions{Workers: 1})
	fds, err := testutil.OpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, link := range fds {
		if strings.HasPrefix(link, "/memfd:mpq:pool square") {
			found = append(found, link)
		}
	}
	slices.Sort(found)
	found = slices.Compact(found) // a queue may be open more than once
	want := []string{"/memfd:mpq:pool square: results (deleted)", "/memfd:mpq:pool square: tasks (deleted)"}
	if !slices.Equal(found, want) {
		t.Errorf("pool queues open: %q; want %q", found, want)
	}
}
