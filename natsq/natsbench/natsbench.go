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
// noise on the machine hits both; a row reports the medians. The package
// does not embed a server: it takes the URL of one with JetStream.
package natsbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq/natsq"
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

func (b *bench) deleteStream(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.ajs.DeleteStream(ctx, name)
}

// The stream and consumer the baseline creates: natsq's, with its default
// Options, written out as a nats.go user would. checkSame makes sure they
// stay the same as what natsq creates.
func rawStreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{natsq.Subject(name)},
		Retention:  jetstream.WorkQueuePolicy,
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    -1,
		MaxBytes:   64 << 20,
		MaxMsgSize: 1 << 20,
		Storage:    jetstream.FileStorage,
		Replicas:   1,
	}
}

func rawConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       natsq.ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		MaxWaiting:    4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// createRaw creates a baseline stream and its consumer on the admin
// connection.
func (b *bench) createRaw(ctx context.Context, name string) error {
	st, err := b.ajs.CreateStream(ctx, rawStreamConfig(name))
	if err != nil {
		return err
	}
	_, err = st.CreateConsumer(ctx, rawConsumerConfig())
	return err
}

// checkSame fails if natsq's stream or consumer name differ from the
// baseline's in anything that can change the speed.
func (b *bench) checkSame(ctx context.Context, name string) error {
	st, err := b.ajs.Stream(ctx, name)
	if err != nil {
		return err
	}
	c, err := st.Consumer(ctx, natsq.ConsumerName)
	if err != nil {
		return err
	}
	got, want := st.CachedInfo().Config, rawStreamConfig(name)
	type streamKey struct {
		Subjects                  string
		Retention                 jetstream.RetentionPolicy
		Discard                   jetstream.DiscardPolicy
		MaxMsgs, MaxBytes         int64
		MaxMsgSize                int32
		Storage                   jetstream.StorageType
		Replicas                  int
		Compression               jetstream.StoreCompression
		AllowDirect, NoAck        bool
		MaxMsgsPerSubject, MaxAge int64
	}
	sk := func(c jetstream.StreamConfig) streamKey {
		return streamKey{strings.Join(c.Subjects, ","), c.Retention, c.Discard, c.MaxMsgs, c.MaxBytes, c.MaxMsgSize,
			c.Storage, c.Replicas, c.Compression, c.AllowDirect, c.NoAck, c.MaxMsgsPerSubject, int64(c.MaxAge)}
	}
	if want.MaxMsgsPerSubject == 0 {
		want.MaxMsgsPerSubject = -1 // as the server fills it in
	}
	if sk(got) != sk(want) {
		return fmt.Errorf("natsq's stream %+v differs from the baseline's %+v", sk(got), sk(want))
	}
	cg, cw := c.CachedInfo().Config, rawConsumerConfig()
	type consumerKey struct {
		Durable                  string
		AckPolicy                jetstream.AckPolicy
		AckWait                  time.Duration
		MaxDeliver, MaxAckPend   int
		MaxWaiting               int
		DeliverPolicy            jetstream.DeliverPolicy
		MaxRequestBatch          int
		MaxRequestExpires        time.Duration
		FilterSubject            string
		HeadersOnly, MemoryStore bool
	}
	ck := func(c jetstream.ConsumerConfig) consumerKey {
		return consumerKey{c.Durable, c.AckPolicy, c.AckWait, c.MaxDeliver, c.MaxAckPending, c.MaxWaiting, c.DeliverPolicy,
			c.MaxRequestBatch, c.MaxRequestExpires, c.FilterSubject, c.HeadersOnly, c.MemoryStorage}
	}
	if ck(cg) != ck(cw) {
		return fmt.Errorf("natsq's consumer %+v differs from the baseline's %+v", ck(cg), ck(cw))
	}
	return nil
}

// fill puts n messages into the stream name, untimed, and checks that they
// are all there.
func (b *bench) fill(ctx context.Context, name string, n int) error {
	subj := natsq.Subject(name)
	for i := 0; i < n; i++ {
		if _, err := b.ajs.PublishAsync(subj, b.msg); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
	}
	select {
	case <-b.ajs.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("fill: no acknowledgements after a minute")
	}
	st, err := b.ajs.Stream(ctx, name)
	if err != nil {
		return err
	}
	if got := st.CachedInfo().State.Msgs; got != uint64(n) {
		return fmt.Errorf("fill: stream %s holds %d messages, want %d", name, got, n)
	}
	return nil
}

// rate is n messages over d.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// split runs f on p goroutines, giving them n messages between them, and
// returns the first error.
func split(n, p int, f func(n int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, p)
	for i := 0; i < p; i++ {
		k := n / p
		if i < n%p {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(k)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// openRaw creates a fresh stream and consumer as a nats.go user would,
// fills it with fill messages (untimed), and connects to the server.
// release closes the connection and deletes the stream.
func (b *bench) openRaw(ctx context.Context, fill int) (nc *nats.Conn, js jetstream.JetStream, name string, release func(), err error) {
	name = b.newName()
	if err := b.createRaw(ctx, name); err != nil {
		return nil, nil, "", nil, err
	}
	if fill > 0 {
		if err := b.fill(ctx, name, fill); err != nil {
			b.deleteStream(name)
			return nil, nil, "", nil, err
		}
	}
	if nc, err = connect(b.cfg.URL); err == nil {
		if js, err = jetstream.New(nc); err != nil {
			nc.Close()
		}
	}
	if err != nil {
		b.deleteStream(name)
		return nil, nil, "", nil, err
	}
	return nc, js, name, func() { nc.Close(); b.deleteStream(name) }, nil
}

// rawPublish: p goroutines call jetstream's Publish, each waiting for its
// acknowledgement, on one connection.
func rawPublish(p int) runFunc {
	return func(ctx context.Context, b *bench, n int) (float64, error) {
		_, js, name, release, err := b.openRaw(ctx, 0)
		if err != nil {
			return 0, err
		}
		defer release()
		if _, err := js.Stream(ctx, name); err != nil { // as natsq.Open does
			return 0, err
		}
		subj := natsq.Subject(name)
		start := time.Now()
		err = split(n, p, func(k int) error {
			for i := 0; i < k; i++ {
				if _, err := js.Publish(ctx, subj, b.msg); err != nil {
					return err
				}
			}
			return nil
		})
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		return rate(n, d), b.checkCount(ctx, name, n)
	}
}

// openNatsq opens a natsq Queue on a fresh stream, over a connection of its
// own, and checks that natsq made the stream and consumer the baseline
// makes. release closes both and deletes the stream.
func (b *bench) openNatsq(ctx context.Context) (q *natsq.Queue, nc *nats.Conn, name string, done func(), err error) {
	name = b.newName()
	nc, err = connect(b.cfg.URL)
	if err != nil {
		return nil, nil, "", nil, err
	}
	done = func() {
		if q != nil {
			q.Close()
		}
		nc.Close()
		b.deleteStream(name)
	}
	q, err = natsq.Open(ctx, nc, name, nil)
	if err == nil {
		err = b.checkSame(ctx, name)
	}
	if err != nil {
		done()
		return nil, nil, "", nil, err
	}
	return q, nc, name, done, nil
}

// natsqPublish: p goroutines call Put on one Queue.
func natsqPublish(p int) runFunc {
	return func(ctx context.Context, b *bench, n int) (float64, error) {
		q, _, name, release, err := b.openNatsq(ctx)
		if err != nil {
			return 0, err
		}
		defer release()
		start := time.Now()
		err = split(n, p, func(k int) error {
			for i := 0; i < k; i++ {
				if err := q.Put(ctx, b.msg); err != nil {
					return err
				}
			}
			return nil
		})
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		return rate(n, d), b.checkCount(ctx, name, n)
	}
}

// checkCount fails unless the stream holds n messages.
func (b *bench) checkCount(ctx context.Context, name string, n int) error {
	st, err := b.ajs.Stream(ctx, name)
	if err != nil {
		return err
	}
	if got := st.CachedInfo().State.Msgs; got != uint64(n) {
		return fmt.Errorf("stream %s holds %d messages after the run, want %d", name, got, n)
	}
	return nil
}

// checkDrained fails unless the consumer has every message acknowledged.
func (b *bench) checkDrained(ctx context.Context, name string) error {
	c, err := b.ajs.Consumer(ctx, name, natsq.ConsumerName)
	if err != nil {
		return err
	}
	// Acks are processed by the server asynchronously: give it a moment.
	for i := 0; ; i++ {
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			return nil
		}
		if i == 50 {
			return fmt.Errorf("consumer of %s: %d pending, %d awaiting ack after the run", name, ci.NumPending, ci.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawConsume: Fetch batches of 64 from the durable consumer and Ack each
// message, then Flush.
func rawConsume(ctx context.Context, b *bench, n int) (float64, error) {
	nc, js, name, release, err := b.openRaw(ctx, n)
	if err != nil {
		return 0, err
	}
	defer release()
	cons, err := js.Consumer(ctx, name, natsq.ConsumerName)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	got := 0
	for got < n {
		batch, err := cons.Fetch(fetchBatch)
		if err != nil {
			return 0, err
		}
		for m := range batch.Messages() {
			if len(m.Data()) != b.cfg.Size {
				return 0, fmt.Errorf("got %d bytes, want %d", len(m.Data()), b.cfg.Size)
			}
			if err := m.Ack(); err != nil {
				return 0, err
			}
			got++
		}
		if err := batch.Error(); err != nil {
			return 0, err
		}
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return rate(n, d), b.checkDrained(ctx, name)
}

// natsqConsume: Get until n messages, then Flush.
func natsqConsume(ctx context.Context, b *bench, n int) (float64, error) {
	q, nc, name, release, err := b.openNatsq(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	if err := b.fill(ctx, name, n); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		m, err := q.Get(ctx)
		if err != nil {
			return 0, err
		}
		if len(m) != b.cfg.Size {
			return 0, fmt.Errorf("got %d bytes, want %d", len(m), b.cfg.Size)
		}
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return rate(n, d), b.checkDrained(ctx, name)
}

// rawRoundTrip: Publish one message, then Next (a Fetch of one, which
// returns as soon as it comes) and Ack it, over and over; then Flush.
func rawRoundTrip(ctx context.Context, b *bench, n int) (float64, error) {
	nc, js, name, release, err := b.openRaw(ctx, 0)
	if err != nil {
		return 0, err
	}
	defer release()
	cons, err := js.Consumer(ctx, name, natsq.ConsumerName)
	if err != nil {
		return 0, err
	}
	subj := natsq.Subject(name)
	start := time.Now()
	done := 0
	for done < n && time.Since(start) < roundTripLimit {
		if _, err := js.Publish(ctx, subj, b.msg); err != nil {
			return 0, err
		}
		m, err := cons.Next()
		if err != nil {
			return 0, err
		}
		if err := m.Ack(); err != nil {
			return 0, err
		}
		done++
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	return rate(done, time.Since(start)), b.checkDrained(ctx, name)
}

// natsqRoundTrip: Put one message, then Get it, over and over; then Flush.
func natsqRoundTrip(ctx context.Context, b *bench, n int) (float64, error) {
	q, nc, name, release, err := b.openNatsq(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	start := time.Now()
	done := 0
	for done < n && time.Since(start) < roundTripLimit {
		if err := q.Put(ctx, b.msg); err != nil {
			return 0, err
		}
		if _, err := q.Get(ctx); err != nil {
			return 0, err
		}
		done++
	}
	if err := nc.Flush(); err != nil {
		return 0, err
	}
	return rate(done, time.Since(start)), b.checkDrained(ctx, name)
}

// median returns the median of v, which it does not reorder.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// describeMachine says what the figures were measured on.
func describeMachine(serverVersion string) string {
	var parts []string
	parts = append(parts, cpuModel())
	parts = append(parts, fmt.Sprintf("%d cores, GOMAXPROCS %d", runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	osName := runtime.GOOS + "/" + runtime.GOARCH
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		osName += " " + strings.TrimSpace(string(rel))
	}
	parts = append(parts, osName, runtime.Version())
	if serverVersion != "" {
		parts = append(parts, "nats-server "+serverVersion)
	}
	return strings.Join(parts, "; ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// Print writes the report as a plain aligned table.
func (r Report) Print(w io.Writer) error {
	c := r.Config
	if _, err := fmt.Fprintf(w, "natsq against raw nats.go (jetstream) on %s, %s\n", c.URL, r.Started.UTC().Format("2006-01-02 15:04:05 UTC")); err != nil {
		return err
	}
	fmt.Fprintf(w, "machine:  %s\n", r.Machine)
	fmt.Fprintf(w, "settings: %d-byte messages, %d per run (consume: rounded up to a multiple of %d); median of %d runs of each, interleaved, after a warm-up;\n",
		c.Size, c.Messages, fetchBatch, c.Runs)
	fmt.Fprintf(w, "          a fresh file-storage work-queue stream per run, with natsq's configuration\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("ROW")
	for _, row := range r.Rows {
		width = max(width, len(row.Name))
	}
	fmt.Fprintf(tw, "%-*s\tNATS.GO msg/s\tNATSQ msg/s\tOVERHEAD\tTARGET\tSTATUS\tNATS.GO RUNS\tNATSQ RUNS\t\n", width, "ROW")
	for _, row := range r.Rows {
		st := "PASS"
		if !row.Pass {
			st = "FAIL"
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%+.1f%%\t<= %.0f%%\t%s\t%s\t%s\t\n", width, row.Name, si(row.Baseline), si(row.Backend),
			100*row.Overhead, 100*row.Target, st, span(row.BaselineRuns), span(row.BackendRuns))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n  overhead: 1 - natsq/nats.go of the medians; negative means natsq was faster\n"+
		"  target:   issue 6 sets it for the first two rows (publish and consume); the others show more\n"+
		"  publish:  jetstream Publish (waits for the PubAck) vs Queue.Put; many producers share one connection\n"+
		"  consume:  Fetch(%d) + Ack of each, vs Queue.Get (Prefetch %d); timed until a Flush of the acks\n"+
		"  put+get:  Publish, then Next + Ack, vs Put then Get, %d times or for %v per run\n",
		fetchBatch, fetchBatch, max(c.Messages/roundTripDivisor, 1), roundTripLimit)
	return err
}

// span formats the range of runs.
func span(v []float64) string {
	if len(v) == 0 {
		return ""
	}
	return si(slices.Min(v)) + " .. " + si(slices.Max(v))
}

// si formats v with a k or M suffix.
func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
