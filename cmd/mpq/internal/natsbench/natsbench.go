// Package natsbench measures the overhead of the natsq backend over raw
// nats.go (its jetstream package) doing the same work on the same NATS
// server in the same run.
//
// Each row times the same work done two ways: the baseline, what a nats.go
// user writes by hand, and the backend, natsq's Queue.
//
//   - "publish": Size-byte messages published one at a time, each waiting
//     for the server's acknowledgement: jetstream's Publish against
//     Queue.Put (which waits for the same acknowledgement).
//   - "consume": messages already in the stream (put there before the clock
//     starts) taken from the durable pull consumer: Fetch of a batch of 64
//     (natsq's default Prefetch) and Ack of each message, against a loop of
//     Queue.Get (which fetches 64 at a time and acks each). The clock stops
//     after a Flush of the connection, so that the acks have reached the
//     server.
//   - "publish ... N producers" (after the two above): the publish row with
//     goroutines sharing one connection (one Queue for the backend).
//   - "put+get ..., one at a time": publish one message and take it, over
//     and over: latency more than throughput. The baseline takes it with
//     Next (a Fetch of one) and acks it; the backend Puts and Gets. A run
//     does Messages/16 round trips or stops after 2s.
//
// Every run uses a stream of its own, created just before it with natsq's
// configuration (work-queue retention, file storage, DiscardNew, MaxBytes
// 64 MiB, the consumer natsq creates) and deleted after it, and a
// connection of its own. The runs of the baseline and the backend are
// interleaved, baseline first, after one untimed warm-up of each, so that
// noise on the machine hits both; a row reports the medians. Run takes the
// URL of a server with JetStream; [StartServer] starts one in the process.
package natsbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultSize     = 64
	DefaultMessages = 80000
	DefaultRuns     = 5
	// Target is the largest overhead a row may show to pass.
	Target = 0.10
)

const (
	// fetchBatch is the baseline consumer's Fetch batch: natsq's default
	// Options.Prefetch.
	fetchBatch = 64
	// producers is how many goroutines publish in the many-producer row.
	producers = 8
	// roundTripLimit bounds a timed run of the round-trip row, which does
	// Messages/roundTripDivisor round trips or stops at this limit.
	roundTripLimit   = 2 * time.Second
	roundTripDivisor = 16
)

// Config says what to measure. Zero fields take the defaults.
type Config struct {
	URL      string `json:"url"`      // nats://HOST:PORT of a server with JetStream (required)
	Size     int    `json:"size"`     // message size in bytes; 0 means 64
	Messages int    `json:"messages"` // messages per timed run; 0 means 80000 (a consume run rounds up to a multiple of 64)
	Runs     int    `json:"runs"`     // timed runs per row, medians reported; 0 means 5
}

// A Row compares the backend with the baseline on one piece of work.
type Row struct {
	Name         string    `json:"name"`     // e.g. "publish 64B", "consume 64B"
	Baseline     float64   `json:"baseline"` // raw nats.go msg/s, median
	Backend      float64   `json:"backend"`  // natsq msg/s, median
	Overhead     float64   `json:"overhead"` // 1 - Backend/Baseline, as a fraction (negative = natsq faster)
	Target       float64   `json:"target"`   // the largest Overhead that passes
	Pass         bool      `json:"pass"`
	BaselineRuns []float64 `json:"baseline_runs"` // msg/s of each timed run, in order
	BackendRuns  []float64 `json:"backend_runs"`
}

// A Report is the outcome of Run.
type Report struct {
	Config  Config    `json:"config"` // with the defaults filled in
	Rows    []Row     `json:"rows"`
	Machine string    `json:"machine"` // CPU, cores, OS, Go and nats-server versions
	Started time.Time `json:"started"`
}

// a row to measure: its name, and the two contenders.
type rowSpec struct {
	name     string
	messages int
	baseline runFunc
	backend  runFunc
}

// A runFunc does one timed run of n messages on a fresh stream and returns
// its rate in msg/s.
type runFunc func(ctx context.Context, b *bench, n int) (float64, error)

// bench is the state of one Run.
type bench struct {
	cfg   Config
	admin *nats.Conn // creates, fills and deletes streams; never timed
	ajs   jetstream.JetStream
	tag   string // unique to the Run: stream names start with it
	seq   int
	msg   []byte
}

// Run measures the rows against the server at cfg.URL, calling progress
// (if not nil) before each step. It stops at the first error, returning the
// rows measured so far with it.
func Run(ctx context.Context, cfg Config, progress func(msg string)) (Report, error) {
	if cfg.Size == 0 {
		cfg.Size = DefaultSize
	}
	if cfg.Messages == 0 {
		cfg.Messages = DefaultMessages
	}
	if cfg.Runs == 0 {
		cfg.Runs = DefaultRuns
	}
	rep := Report{Config: cfg, Started: time.Now()}
	switch {
	case cfg.URL == "":
		return rep, errors.New("natsbench: no server URL")
	case cfg.Size < 0 || cfg.Messages < 0 || cfg.Runs < 0:
		return rep, fmt.Errorf("natsbench: negative value in %+v", cfg)
	case cfg.Size > 512<<10:
		return rep, fmt.Errorf("natsbench: message size %d is over 512 KiB", cfg.Size)
	}
	if progress == nil {
		progress = func(string) {}
	}
	admin, err := connect(cfg.URL)
	if err != nil {
		return rep, err
	}
	defer admin.Close()
	rep.Machine = describeMachine(admin.ConnectedServerVersion())
	ajs, err := jetstream.New(admin, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return rep, fmt.Errorf("natsbench: %w", err)
	}
	if _, err := ajs.AccountInfo(ctx); err != nil {
		return rep, fmt.Errorf("natsbench: %s has no JetStream? %w", cfg.URL, err)
	}
	var tag [4]byte
	_, _ = rand.Read(tag[:])
	b := &bench{cfg: cfg, admin: admin, ajs: ajs, tag: "natsbench-" + hex.EncodeToString(tag[:]), msg: make([]byte, cfg.Size)}
	for i := range b.msg {
		b.msg[i] = byte('a' + i%26)
	}
	defer b.cleanup()
	// A stream that lives for the whole Run: nats-server 2.15 removes an
	// account's streams directory in the background when its last stream
	// is deleted, and a stream created meanwhile fails ("error creating
	// store for stream"). With this one there, deleting a run's stream is
	// never deleting the last.
	if _, err := ajs.CreateStream(ctx, jetstream.StreamConfig{Name: b.tag + "-keep", Subjects: []string{b.tag + ".keep"}, Storage: jetstream.FileStorage}); err != nil {
		return rep, fmt.Errorf("natsbench: create a stream on %s: %w", cfg.URL, err)
	}

	consumeN := (cfg.Messages + fetchBatch - 1) / fetchBatch * fetchBatch
	specs := []rowSpec{
		{fmt.Sprintf("publish %dB", cfg.Size), cfg.Messages, rawPublish(1), natsqPublish(1)},
		{fmt.Sprintf("consume %dB", cfg.Size), consumeN, rawConsume, natsqConsume},
		{fmt.Sprintf("publish %dB, %d producers", cfg.Size, producers), cfg.Messages, rawPublish(producers), natsqPublish(producers)},
		{fmt.Sprintf("put+get %dB, one at a time", cfg.Size), max(cfg.Messages/roundTripDivisor, 1), rawRoundTrip, natsqRoundTrip},
	}
	for _, s := range specs {
		row, err := b.measure(ctx, s, progress)
		if err != nil {
			return rep, fmt.Errorf("natsbench: %s: %w", s.name, err)
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// measure runs a row: a warm-up of each contender, then Runs timed runs of
// each, interleaved.
func (b *bench) measure(ctx context.Context, s rowSpec, progress func(string)) (Row, error) {
	row := Row{Name: s.name, Target: Target}
	warm := max(s.messages/10/fetchBatch, 1) * fetchBatch // whole batches, as a consume run needs
	progress(s.name + ": warm-up")
	if _, err := s.baseline(ctx, b, warm); err != nil {
		return row, fmt.Errorf("nats.go warm-up: %w", err)
	}
	if _, err := s.backend(ctx, b, warm); err != nil {
		return row, fmt.Errorf("natsq warm-up: %w", err)
	}
	for i := 1; i <= b.cfg.Runs; i++ {
		progress(fmt.Sprintf("%s: run %d/%d, nats.go", s.name, i, b.cfg.Runs))
		r, err := s.baseline(ctx, b, s.messages)
		if err != nil {
			return row, fmt.Errorf("nats.go: %w", err)
		}
		row.BaselineRuns = append(row.BaselineRuns, r)
		progress(fmt.Sprintf("%s: run %d/%d, natsq", s.name, i, b.cfg.Runs))
		if r, err = s.backend(ctx, b, s.messages); err != nil {
			return row, fmt.Errorf("natsq: %w", err)
		}
		row.BackendRuns = append(row.BackendRuns, r)
	}
	row.Baseline, row.Backend = median(row.BaselineRuns), median(row.BackendRuns)
	if row.Baseline > 0 {
		row.Overhead = 1 - row.Backend/row.Baseline
	}
	row.Pass = row.Baseline > 0 && row.Overhead <= row.Target
	return row, nil
}

// connect connects to the server at url, naming the connection natsbench.
func connect(url string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name("natsbench"))
	if err != nil {
		return nil, fmt.Errorf("natsbench: connect to %s: %w", url, err)
	}
	return nc, nil
}

// newName returns a stream name not used before in this Run.
func (b *bench) newName() string {
	b.seq++
	return fmt.Sprintf("%s-%d", b.tag, b.seq)
}

// cleanup deletes every stream of this Run that is left, after an error.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := b.ajs.StreamNames(ctx)
	var left []string
	for n := range names.Name() {
		if strings.HasPrefix(n, b.tag+"-") {
			left = append(left, n)
		}
	}
	for _, n := range left {
		_ = b.ajs.DeleteStream(ctx, n)
	}
}

// deleteStream deletes the stream name, giving up after 10s.
func (b *bench) deleteStream(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.ajs.DeleteStream(ctx, name)
}
