package bench

import (
	"context"
	"fmt"
	"time"
)

// A kind is what a row measures.
type kind int

const (
	throughput kind = iota // producers stream messages to consumers
	roundTrip              // ping-pong between two parties
	allocs                 // heap allocations per message, in process
	idleCPU                // CPU burnt by a consumer blocked on an empty queue
)

// The kinds of row, as [Result.Kind] names them.
const (
	KindThroughput = "throughput" // producers stream messages to consumers
	KindRoundTrip  = "round_trip" // ping-pong between two parties
	KindAllocs     = "allocs"     // heap allocations per message, in process
	KindIdleCPU    = "idle_cpu"   // CPU burnt by a consumer blocked on an empty queue
)

// String returns the name of k in [Result.Kind].
func (k kind) String() string {
	return [...]string{KindThroughput, KindRoundTrip, KindAllocs, KindIdleCPU}[k]
}

// A row is one line group of the table: one measurement, taken with every
// backend that supports it.
type row struct {
	id        string // name for -rows
	title     string // name in the table
	kind      kind
	producers int
	consumers int
	size      int // message bytes
	// workers, if > 0, makes the row a process pool's: a throughput row
	// maps tasks over that many worker processes, a round-trip row submits
	// one task and waits for its result. Only the pool contenders (see
	// [poolIDs]) run it, and they run nothing else.
	workers int
}

// pool reports whether r is a process pool's row.
func (r row) pool() bool { return r.workers > 0 }

// rows lists every row in table order.
var rows = []row{
	{id: "1to1-64", title: "1->1 64 B", kind: throughput, producers: 1, consumers: 1, size: 64},
	{id: "1to1-1k", title: "1->1 1 KiB", kind: throughput, producers: 1, consumers: 1, size: 1 << 10},
	{id: "1to1-64k", title: "1->1 64 KiB", kind: throughput, producers: 1, consumers: 1, size: 64 << 10},
	{id: "4to4-64", title: "4->4 64 B", kind: throughput, producers: 4, consumers: 4, size: 64},
	{id: "rtt-64", title: "round trip 64 B", kind: roundTrip, producers: 1, consumers: 1, size: 64},
	{id: "allocs", title: "allocs/msg 64 B", kind: allocs, size: 64},
	{id: "idle", title: "blocked Get 2 s", kind: idleCPU},
	{id: "pool-map", title: "pool Map x*x, 2 workers", kind: throughput, workers: 2},
	{id: "pool-submit", title: "pool Submit+Wait, 2 workers", kind: roundTrip, workers: 2},
}

// limits bound one run of one backend: it stops at whichever comes first.
type limits struct {
	msgs   int           // messages (throughput), round trips or pool tasks
	time   time.Duration // wall time
	warmup int           // round trips not timed
}

// A Sample is the outcome of one run. Only the fields of the row's kind are
// set; a zero headline figure (0 allocations) is in [Result.Value].
type Sample struct {
	Msgs         int64   `json:"msgs,omitempty"`    // messages moved, or round trips timed
	Seconds      float64 `json:"seconds,omitempty"` // wall time they took
	MsgsPerSec   float64 `json:"msgs_per_sec,omitempty"`
	MBPerSec     float64 `json:"mb_per_sec,omitempty"` // payload, 10^6 bytes
	P50NS        float64 `json:"p50_ns,omitempty"`
	P99NS        float64 `json:"p99_ns,omitempty"`
	SleepsPerMsg float64 `json:"sleeps_per_msg,omitempty"` // mpq: Stats.Waits (futex sleeps, all processes) per message
	AllocsPerMsg float64 `json:"allocs_per_msg,omitempty"`
	CPUPercent   float64 `json:"cpu_percent,omitempty"`     // of one core, whole child process
	CPUInWaitPct float64 `json:"cpu_in_wait_pct,omitempty"` // of one core, measured by the child around Get alone
	// Hist counts the timed round trips by duration (round-trip rows).
	Hist *Histogram `json:"hist,omitempty"`
}

// rate fills the throughput fields of s from msgs of size bytes moved in d.
func rate(msgs int64, size int, d time.Duration) (Sample, error) {
	if msgs <= 0 || d <= 0 {
		return Sample{}, fmt.Errorf("no messages moved (%d in %v)", msgs, d)
	}
	secs := d.Seconds()
	return Sample{
		Msgs: msgs, Seconds: secs,
		MsgsPerSec: float64(msgs) / secs,
		MBPerSec:   float64(msgs) * float64(size) / secs / 1e6,
	}, nil
}

// latency fills the round-trip fields of s from the timed round trips,
// after the timing is over.
func latency(rtts []time.Duration, total time.Duration) (Sample, error) {
	if len(rtts) == 0 {
		return Sample{}, fmt.Errorf("no round trips timed")
	}
	h := newHistogram()
	ns := make([]float64, len(rtts))
	for i, d := range rtts {
		ns[i] = float64(d.Nanoseconds())
		h.add(ns[i])
	}
	return Sample{
		Msgs: int64(len(rtts)), Seconds: total.Seconds(),
		P50NS: percentile(ns, 50), P99NS: percentile(ns, 99),
		Hist: h,
	}, nil
}

// A backend is one message-passing mechanism under test. measure runs the
// row once and returns what it saw; supports says which rows it can run.
type backend interface {
	supports(r row) bool
	measure(ctx context.Context, r row, lim limits) (Sample, error)
}

// A contender is a backend with its names. The table of [contenders]
// leaves b nil; the harness fills it in.
type contender struct {
	id     string // name for -backends and in the JSON
	label  string // name in the table
	note   string // how it moves a message, for the table's legend
	python bool   // runs under the Python limits
	// rows, if set, are the only rows the contender runs (of the ones its
	// backend supports).
	rows []string
	b    backend
}

// mpqIDs are the contenders whose figures ratios and targets are about;
// every other contender is a baseline.
var mpqIDs = []string{"mpq", "mpq-batch", "mpq-pipe", "mpq-pipe-append", "mpq-pool"}

// queueIDs are the contenders that move messages through a Queue: the
// targets are about them unless they say otherwise.
var queueIDs = []string{"mpq", "mpq-batch"}

// variantIDs are contenders that are mpq with a feature on: acknowledgement
// mode, durable queues. They are compared with plain mpq only, which shows
// the cost of the feature, and no target judges them.
var variantIDs = []string{"mpq-ack", "mpq-durable-put", "mpq-durable-10ms", "mpq-durable-never"}

// variantRows are the rows the variants run: acknowledgements 1->1 and 4->4
// with small messages, durable queues 1->1 with small messages.
var (
	ackRows     = []string{"1to1-64", "4to4-64"}
	durableRows = []string{"1to1-64"}
)

// contenderTable lists every contender in table order, without its
// backend: [contenders] makes those.
var contenderTable = []contender{
	{id: "mpq", label: "mpq",
		note: "Put / AppendGet into a reused buffer, one message per call; separate processes"},
	{id: "mpq-batch", label: "mpq (batch)",
		note: "PutBatch of 64 / GetBatch of up to 64; separate processes"},
	{id: "mpq-ack", label: "mpq (Receive+Ack)", rows: ackRows,
		note: "Put / Receive then Ack of each message (acknowledgement mode); separate processes"},
	{id: "mpq-durable-put", label: "mpq durable (sync/Put)", rows: durableRows,
		note: "as mpq, on a durable queue on disk with Sync: SyncEveryPut (an fsync per Put)"},
	{id: "mpq-durable-10ms", label: "mpq durable (10ms)", rows: durableRows,
		note: "as mpq, on a durable queue on disk with Sync: SyncEvery(10ms)"},
	{id: "mpq-durable-never", label: "mpq durable (never)", rows: durableRows,
		note: "as mpq, on a durable queue on disk with Sync: SyncNever (flushing left to the kernel)"},
	{id: "mpq-pipe", label: "mpq Pipe",
		note: "mpq.Pipe, one-way (round trip: duplex), Send / Recv (a new slice per message); separate processes"},
	{id: "mpq-pipe-append", label: "mpq Pipe (append)",
		note: "as mpq Pipe, but AppendRecv into a reused buffer"},
	{id: "socket", label: "unix socket",
		note: "socketpair SOCK_SEQPACKET, one write(2) / read(2) per message; separate processes"},
	{id: "chan", label: "Go chan",
		note: "chan []byte (1024 buffered) between goroutines of one process; the receiver copies"},
	{id: "py-queue", label: "py Queue", python: true,
		note: "multiprocessing.Queue of bytes, bounded to ~4 MiB; separate processes"},
	{id: "py-pipe", label: "py Pipe", python: true,
		note: "multiprocessing.Pipe send_bytes / recv_bytes; separate processes"},
	{id: "mpq-pool", label: "mpq proc.Pool",
		note: "proc.Pool of worker processes: Map of a []int (pool-map), Submit then Wait (pool-submit); pool made and warmed untimed"},
	{id: "py-pool", label: "py Pool.map", python: true, rows: []string{"pool-map"},
		note: "multiprocessing.Pool(2).map(square, range(N)), default chunksize (N/8); fork; pool made and warmed untimed"},
	{id: "py-executor", label: "py ProcessPoolExecutor", python: true,
		note: "concurrent.futures.ProcessPoolExecutor(2, fork): map, default chunksize 1, in rounds of 500 within the time limit (pool-map); submit(square, x).result() (pool-submit)"},
}
