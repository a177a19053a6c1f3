//go:build linux

package proc_test

import (
	"context"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/testutil"
	"github.com/mpq-go/mpq/proc"
)

// A chaosIn is a task of the chaos test: its ID, and data to checksum.
type chaosIn struct {
	ID   uint64
	Data []byte
}

// A chaosOut is its result.
type chaosOut struct {
	ID  uint64
	Sum uint32
}

var chaosTask = proc.DefineTask("chaos", func(ctx context.Context, in chaosIn) (chaosOut, error) {
	var sum uint32
	for range 50 { // a few microseconds, for kills to land in
		sum = crc32.Update(sum, crc32.IEEETable, in.Data)
	}
	return chaosOut{ID: in.ID, Sum: sum}, nil
})

// chaosSum is what chaosTask returns for data.
func chaosSum(data []byte) uint32 {
	var sum uint32
	for range 50 {
		sum = crc32.Update(sum, crc32.IEEETable, data)
	}
	return sum
}

// A chaosAudit counts the results of the chaos test.
type chaosAudit struct {
	mu      sync.Mutex
	want    map[uint64]uint32 // checksum by ID, of every task submitted
	got     map[uint64]int    // results by ID
	wrong   int
	failed  []error
	last    time.Time
	worst   time.Duration // longest gap between two results
	sent    map[uint64]time.Time
	slowest time.Duration // longest from a task\'s submission to its result
	nextID  uint64
}

func (a *chaosAudit) tasks(n int) []chaosIn {
	a.mu.Lock()
	defer a.mu.Unlock()
	ins := make([]chaosIn, n)
	for i := range ins {
		a.nextID++
		d := make([]byte, 64+rand.IntN(448))
		for j := range d {
			d[j] = byte(rand.Uint32())
		}
		ins[i] = chaosIn{ID: a.nextID, Data: d}
		a.want[a.nextID] = chaosSum(d)
		a.sent[a.nextID] = time.Now()
	}
	return ins
}

func (a *chaosAudit) result(out chaosOut, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if gap := now.Sub(a.last); !a.last.IsZero() && gap > a.worst {
		a.worst = gap
	}
	a.last = now
	if err != nil {
		a.failed = append(a.failed, err)
		return
	}
	a.got[out.ID]++
	if lat := now.Sub(a.sent[out.ID]); lat > a.slowest {
		a.slowest = lat
	}
	if sum, ok := a.want[out.ID]; !ok || sum != out.Sum {
		a.wrong++
	}
}

// round runs n tasks through Map, Stream or Submit.
func (a *chaosAudit) round(t *testing.T, p *proc.Pool[chaosIn, chaosOut], i, n int) {
	ins := a.tasks(n)
	switch i % 3 {
	case 0:
		outs, err := p.Map(t.Context(), ins)
		if err != nil {
			a.result(chaosOut{}, err)
			return
		}
		for j, out := range outs {
			if out.ID != ins[j].ID {
				a.result(chaosOut{}, errors.New("Map result out of order"))
			}
			a.result(out, nil)
		}
	case 1:
		for out, err := range p.Stream(t.Context(), slices.Values(ins)) {
			a.result(out, err)
		}
	case 2:
		var fs []*proc.Future[chaosOut]
		for _, in := range ins[:min(len(ins), 64)] {
			f, err := p.Submit(t.Context(), in)
			if err != nil {
				a.result(chaosOut{}, err)
				continue
			}
			fs = append(fs, f)
		}
		for _, f := range fs {
			a.result(f.Wait(t.Context()))
		}
		for k := range ins[min(len(ins), 64):] {
			delete(a.want, ins[64+k].ID)
		}
	}
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestPoolChaos runs tasks with IDs and checksums through a pool of 4
// workers while a killer SIGKILLs a random worker every 0-30 ms, for
// MPQ_POOL_CHAOS_KILLS kills (100 by default; the long form is 1000). The
// audit: no task lost, none returned twice, none wrong, none failed.
func TestPoolChaos(t *testing.T) {
	kills := testutil.EnvInt("MPQ_POOL_CHAOS_KILLS", 100)
	p := newPool(t, chaosTask, &proc.PoolOptions{Workers: 4, MaxAttempts: 1000})
	a := &chaosAudit{want: map[uint64]uint32{}, got: map[uint64]int{}, sent: map[uint64]time.Time{}}

	// Calm: the worst gap between results with no deaths.
	for i := range 3 {
		a.round(t, p, i, 500)
	}
	calm, calmSlowest := a.worst, a.slowest

	done := make(chan struct{})
	killed := 0
	dead := map[int]bool{} // each worker is counted once
	go func() {
		defer close(done)
		for killed < kills {
			time.Sleep(time.Duration(rand.Int64N(int64(30 * time.Millisecond))))
			pids := p.Pids()
			if len(pids) == 0 {
				continue
			}
			if pid := pids[rand.IntN(len(pids))]; !dead[pid] && running(pid) && syscall.Kill(pid, syscall.SIGKILL) == nil {
				dead[pid] = true
				killed++
			}
		}
	}()
	a.mu.Lock()
	a.worst, a.last, a.slowest = 0, time.Time{}, 0
	a.mu.Unlock()
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			a.round(t, p, i, 500)
			continue
		}
		break
	}
	chaos := time.Since(start)
	a.round(t, p, 0, 500) // after the storm
	a.mu.Lock()
	defer a.mu.Unlock()
	lost, dup := 0, 0
	for id := range a.want {
		switch a.got[id] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	s := p.Stats()
	t.Logf("%d kills in %v; %d tasks; lost %d, duplicate %d, wrong %d, failed %d; retried %d, replaced %d; worst gap between results %v (calm %v), slowest task %v (calm %v)",
		killed, chaos.Round(time.Millisecond), len(a.want), lost, dup, a.wrong, len(a.failed), s.Retried, s.Replaced,
		a.worst.Round(time.Millisecond), calm.Round(time.Millisecond), a.slowest.Round(time.Millisecond), calmSlowest.Round(time.Millisecond))
	if lost != 0 || dup != 0 || a.wrong != 0 || len(a.failed) != 0 {
		t.Errorf("audit: lost %d, duplicate %d, wrong %d, failed %d (first: %v); want 0 of each",
			lost, dup, a.wrong, len(a.failed), append(a.failed, nil)[0])
	}
	if s.InFlight != 0 {
		t.Errorf("Stats = %+v; want nothing in flight", s)
	}
	if s.Replaced < killed {
		t.Errorf("%d workers replaced after %d kills", s.Replaced, killed)
	}
}
