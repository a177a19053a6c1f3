package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

func init() { commands = append(commands, newServeCmd) }

func newServeCmd(e *env) *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "serve --metrics ADDR",
		Short: "Serve the queues' counters to Prometheus",
		Long: `serve answers Prometheus scrapes at http://ADDR/metrics with the state of
every queue in the directory, read at scrape time without attaching to the
queues: depth, bytes used, processes attached and waiting, the counters
(puts, gets, acks...), the size of the queue's file and whether all of it
is backed (mpq_queue_backed), each with a queue label; and the size and
free bytes of the directory's file system (mpq_filesystem_free_bytes),
with dir, mountpoint and fstype labels. Queues created or removed while
it runs come and go from the metrics.

A queue that cannot be read is left out of the scrape, counted in
mpq_scrape_errors_total, and reported on standard error.

serve prints the address it listens on (so port 0 picks a free port) and
runs until interrupted.`,
		Example: `  mpq serve --metrics 127.0.0.1:9464
  mpq serve --dir /var/lib/app/queues --metrics :9464
  curl -s http://127.0.0.1:9464/metrics | grep mpq_queue_messages`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			if addr == "" {
				return usage("serve: --metrics ADDR is required (for example --metrics 127.0.0.1:9464)")
			}
			return serveMetrics(c.Context(), e, addr)
		},
	}
	c.Flags().StringVar(&addr, "metrics", "", "serve Prometheus metrics at `ADDR` (host:port; port 0 picks one)")
	return c
}

// serveMetrics serves the metrics of e's queues at addr until ctx is done,
// then shuts the server down.
func serveMetrics(ctx context.Context, e *env, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(exitFailure, "serve: %v", err)
	}
	stderr := &serveLog{w: e.stderr}
	srv := &http.Server{
		Handler:           metricsMux(e, stderr),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(stderr, "mpq: serve: ", 0),
	}
	fmt.Fprintf(stderr, "mpq: serving metrics for %s on http://%s/metrics\n", e.queueDir(), ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fail(exitFailure, "serve: %v", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
		return fail(exitFailure, "serve: shut down: %v", err)
	}
	<-done // http.ErrServerClosed
	return nil
}

// metricsMux serves /metrics, and at / a page that links to it.
func metricsMux(e *env, stderr io.Writer) *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newQueueCollector(e.dir, stderr),
		collectors.NewBuildInfoCollector(),
	)
	metrics := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            log.New(stderr, "mpq: serve: ", 0),
		Timeout:             30 * time.Second,
		MaxRequestsInFlight: 4,
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><title>mpq</title></head><body>
<h1>mpq</h1>
<p>Queues in %s: <a href="metrics">metrics</a></p>
</body></html>
`, html.EscapeString(e.queueDir()))
	})
	return mux
}

// serveLog serializes the writes of the HTTP server and the collector,
// whose goroutines report to the same standard error.
type serveLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Descriptions of the metrics of queueCollector.
var (
	queueLabel = []string{"queue"}

	descQueues = prometheus.NewDesc("mpq_queues",
		"Queues in the directory.", nil, nil)
	descScrapeErrors = prometheus.NewDesc("mpq_scrape_errors_total",
		"Times a queue, or the directory, could not be read for a scrape (the queue is then left out of it).", nil, nil)

	fsLabels   = []string{"dir", "mountpoint", "fstype"}
	descFSSize = prometheus.NewDesc("mpq_filesystem_size_bytes",
		"Size of the file system the queue directory is on, in bytes.", fsLabels, nil)
	descFSFree = prometheus.NewDesc("mpq_filesystem_free_bytes",
		"Bytes of the file system the queue directory is on that mpq may still allocate: a new queue reserves all of its file when it is made, and one that does not fit is refused.", fsLabels, nil)

	descMessages = prometheus.NewDesc("mpq_queue_messages",
		"Messages waiting in the queue, given back ones included.", queueLabel, nil)
	descUsed = prometheus.NewDesc("mpq_queue_used_bytes",
		"Ring bytes not yet reclaimed: messages waiting, held or given back.", queueLabel, nil)
	descCapacity = prometheus.NewDesc("mpq_queue_capacity_bytes",
		"Size of the queue's ring in bytes.", queueLabel, nil)
	descMaxMessage = prometheus.NewDesc("mpq_queue_max_message_bytes",
		"Largest message the queue accepts, in bytes.", queueLabel, nil)
	descInFlight = prometheus.NewDesc("mpq_queue_in_flight_messages",
		"Deliveries held by consumers or given back, not yet done.", queueLabel, nil)
	descProcesses = prometheus.NewDesc("mpq_queue_processes",
		"Processes attached to the queue.", queueLabel, nil)
	descWaiting = prometheus.NewDesc("mpq_queue_waiting_processes",
		`Attached processes asleep in the queue, waiting for a message (for="data") or for room (for="space").`,
		[]string{"queue", "for"}, nil)
	descGone = prometheus.NewDesc("mpq_queue_gone_processes",
		"Processes no longer running that still own part of the queue (a lock, deliveries, a waiter bit) until a live process takes it over.", queueLabel, nil)
	descSealed = prometheus.NewDesc("mpq_queue_sealed",
		"1 if the queue is sealed, else 0.", queueLabel, nil)
	descDurable = prometheus.NewDesc("mpq_queue_durable",
		"1 if the queue is durable, else 0.", queueLabel, nil)
	descStale = prometheus.NewDesc("mpq_queue_stale",
		"1 if a process died inside Put or Get, so the counters may be off until the next Put or Get, else 0.", queueLabel, nil)
	descFileSize = prometheus.NewDesc("mpq_queue_file_bytes",
		"Size of the queue's file in bytes.", queueLabel, nil)
	descBacked = prometheus.NewDesc("mpq_queue_backed",
		"1 if every byte of the queue's file has storage allocated, else 0 (a sparse file: its pages get storage when first touched, and the next process to open it reserves the rest, or fails).", queueLabel, nil)
	descCreated = prometheus.NewDesc("mpq_queue_created_timestamp_seconds",
		"When the queue was created, in seconds since the Unix epoch; its counters start from 0 then.", queueLabel, nil)

	descPuts = prometheus.NewDesc("mpq_queue_puts_total",
		"Messages put since the queue was created.", queueLabel, nil)
	descGets = prometheus.NewDesc("mpq_queue_gets_total",
		"Messages taken since the queue was created, by Get or a first Receive.", queueLabel, nil)
	descWaits = prometheus.NewDesc("mpq_queue_waits_total",
		"Times a Put or Get slept waiting.", queueLabel, nil)
	descAcks = prometheus.NewDesc("mpq_queue_acks_total",
		"Deliveries acknowledged.", queueLabel, nil)
	descRedelivered = prometheus.NewDesc("mpq_queue_redelivered_total",
		"Deliveries given back by Nack, an expired lease or a dead consumer.", queueLabel, nil)
	descDeadLettered = prometheus.NewDesc("mpq_queue_dead_lettered_total",
		"Messages that reached the queue's MaxDeliveries (moved to its dead-letter queue, or dropped).", queueLabel, nil)
	descTorn = prometheus.NewDesc("mpq_queue_torn_total",
		"Damaged records dropped by crash recovery (durable queues).", queueLabel, nil)
	descRecovered = prometheus.NewDesc("mpq_queue_recovered_total",
		"Locks taken over from processes that died holding them.", queueLabel, nil)
)

// queueCollector is a prometheus.Collector of the queues in a directory:
// every Collect lists them and inspects each (read-only: it attaches to
// none). A queue it cannot read is left out of that scrape, counted in
// mpq_scrape_errors_total and reported once on its log, rather than
// failing the whole scrape. Its methods are safe for concurrent use.
type queueCollector struct {
	dir    string    // the queues' directory; "" for the default one
	log    io.Writer // where failures to read a queue are reported
	errors atomic.Uint64

	mu      sync.Mutex
	failing map[string]string // the error last reported, by queue ("" for the directory)
}

func newQueueCollector(dir string, w io.Writer) *queueCollector {
	return &queueCollector{dir: dir, log: w, failing: map[string]string{}}
}

// Describe sends the descriptions of every metric Collect may send.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descQueues, descScrapeErrors, descFSSize, descFSFree,
		descMessages, descUsed, descCapacity, descMaxMessage, descInFlight,
		descProcesses, descWaiting, descGone, descSealed, descDurable, descStale, descFileSize, descBacked, descCreated,
		descPuts, descGets, descWaits, descAcks, descRedelivered, descDeadLettered, descTorn, descRecovered,
	} {
		ch <- d
	}
}

// Collect reads the queues as they are now and sends their metrics.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	names, err := mpq.List(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // no queue was ever created there: none to report
	}
	c.report("", err)
	present := map[string]bool{"": true, fsKey: true}
	for _, name := range names {
		if !utf8.ValidString(name) {
			// Prometheus label values must be UTF-8: one such name
			// would fail the whole scrape.
			present[name] = true
			c.report(name, fmt.Errorf("queue name %q is not valid UTF-8", name))
			continue
		}
		st, err := mpq.Inspect(name, &mpq.Options{Dir: c.dir})
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since List
		}
		present[name] = true
		c.report(name, err)
		if err == nil {
			collectQueue(ch, &st)
		}
	}
	c.mu.Lock()
	for name := range c.failing {
		if !present[name] {
			delete(c.failing, name)
		}
	}
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descQueues, prometheus.GaugeValue, float64(len(present)-2))
	c.collectFS(ch)
	ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.CounterValue, float64(c.errors.Load()))
}

// fsKey is the key of the directory's file system among the failing
// queues of a queueCollector: no queue name has a '/'.
const fsKey = "/"

// collectFS sends the size and free space of the directory's file system.
// A directory that does not exist yet has none: nothing is sent.
func (c *queueCollector) collectFS(ch chan<- prometheus.Metric) {
	dir := c.dir
	if dir == "" {
		dir = mpq.DefaultDir()
	}
	f, err := mpq.StatFS(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	c.report(fsKey, err)
	if err != nil {
		return
	}
	for _, s := range []string{dir, f.Mount, f.Type} {
		if !utf8.ValidString(s) {
			c.report(fsKey, fmt.Errorf("file system of %q: label value %q is not valid UTF-8", dir, s))
			return
		}
	}
	ch <- prometheus.MustNewConstMetric(descFSSize, prometheus.GaugeValue, float64(f.Size), dir, f.Mount, f.Type)
	ch <- prometheus.MustNewConstMetric(descFSFree, prometheus.GaugeValue, float64(f.Free), dir, f.Mount, f.Type)
}

// report counts err, if not nil, and writes it to the log unless it is the
// error last reported for the queue.
func (c *queueCollector) report(name string, err error) {
	if err != nil {
		c.errors.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.failing, name)
		return
	}
	msg := err.Error()
	if c.failing[name] == msg {
		return
	}
	c.failing[name] = msg
	if name == "" || name == fsKey {
		fmt.Fprintf(c.log, "mpq: serve: %v\n", err)
	} else {
		fmt.Fprintf(c.log, "mpq: serve: leaving queue %s out of the metrics: %v\n", name, err)
	}
}

// collectQueue sends the metrics of one queue.
func collectQueue(ch chan<- prometheus.Metric, st *mpq.Stats) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{st.Name}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		if st.Created.IsZero() {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), st.Name)
			return
		}
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, float64(v), st.Created, st.Name)
	}
	var waitData, waitSpace int
	for _, p := range st.Procs {
		if p.WaitingData {
			waitData++
		}
		if p.WaitingSpace {
			waitSpace++
		}
	}
	gauge(descMessages, float64(st.Len))
	gauge(descUsed, float64(st.Used))
	gauge(descCapacity, float64(st.Capacity))
	gauge(descMaxMessage, float64(st.MaxMessage))
	gauge(descInFlight, float64(st.InFlight))
	gauge(descProcesses, float64(len(st.Procs)))
	gauge(descWaiting, float64(waitData), "data")
	gauge(descWaiting, float64(waitSpace), "space")
	gauge(descGone, float64(len(st.Gone)))
	gauge(descSealed, boolValue(st.Sealed))
	gauge(descDurable, boolValue(st.Durable))
	gauge(descStale, boolValue(st.Stale))
	if st.FileSize > 0 {
		gauge(descFileSize, float64(st.FileSize))
		gauge(descBacked, boolValue(st.Backed))
	}
	if !st.Created.IsZero() {
		gauge(descCreated, float64(st.Created.UnixNano())/1e9)
	}
	counter(descPuts, st.Puts)
	counter(descGets, st.Gets)
	counter(descWaits, st.Waits)
	counter(descAcks, st.Acks)
	counter(descRedelivered, st.Redelivered)
	counter(descDeadLettered, st.DeadLettered)
	counter(descTorn, st.Torn)
	counter(descRecovered, st.Recovered)
}

// boolValue is 1 for true and 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
