package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mpq-go/mpq"
)

// serveQueue creates the queue name in dir and puts msgs into it; the
// handle is closed when the test ends.
func serveQueue(t testing.TB, dir, name string, msgs ...string) *mpq.Queue {
	t.Helper()
	q := createQueue(t, name, &mpq.Options{Dir: dir, Capacity: 64 << 10})
	for _, m := range msgs {
		if err := q.Put(context.Background(), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

func TestCollectorMetrics(t *testing.T) {
	dir := t.TempDir()
	jobs := serveQueue(t, dir, "jobs", "a", "bb", "ccc")
	if _, err := jobs.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := serveQueue(t, dir, "done")
	if err := done.Seal(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	c := newQueueCollector(dir, &log)

	want := `
# HELP mpq_queue_messages Messages waiting in the queue, given back ones included.
# TYPE mpq_queue_messages gauge
mpq_queue_messages{queue="done"} 0
mpq_queue_messages{queue="jobs"} 2
# HELP mpq_queue_used_bytes Ring bytes not yet reclaimed: messages waiting, held or given back.
# TYPE mpq_queue_used_bytes gauge
mpq_queue_used_bytes{queue="done"} 0
mpq_queue_used_bytes{queue="jobs"} 32
# HELP mpq_queue_capacity_bytes Size of the queue's ring in bytes.
# TYPE mpq_queue_capacity_bytes gauge
mpq_queue_capacity_bytes{queue="done"} 65536
mpq_queue_capacity_bytes{queue="jobs"} 65536
# HELP mpq_queue_processes Processes attached to the queue.
# TYPE mpq_queue_processes gauge
mpq_queue_processes{queue="done"} 1
mpq_queue_processes{queue="jobs"} 1
# HELP mpq_queue_sealed 1 if the queue is sealed, else 0.
# TYPE mpq_queue_sealed gauge
mpq_queue_sealed{queue="done"} 1
mpq_queue_sealed{queue="jobs"} 0
# HELP mpq_queue_puts_total Messages put since the queue was created.
# TYPE mpq_queue_puts_total counter
mpq_queue_puts_total{queue="done"} 0
mpq_queue_puts_total{queue="jobs"} 3
# HELP mpq_queue_gets_total Messages taken since the queue was created, by Get or a first Receive.
# TYPE mpq_queue_gets_total counter
mpq_queue_gets_total{queue="done"} 0
mpq_queue_gets_total{queue="jobs"} 1
# HELP mpq_queue_backed 1 if every byte of the queue's file has storage allocated, else 0 (a sparse file: its pages get storage when first touched, and the next process to open it reserves the rest, or fails).
# TYPE mpq_queue_backed gauge
mpq_queue_backed{queue="done"} 1
mpq_queue_backed{queue="jobs"} 1
# HELP mpq_queues Queues in the directory.
# TYPE mpq_queues gauge
mpq_queues 2
# HELP mpq_scrape_errors_total Times a queue, or the directory, could not be read for a scrape (the queue is then left out of it).
# TYPE mpq_scrape_errors_total counter
mpq_scrape_errors_total 0
`
	names := []string{
		"mpq_queue_messages", "mpq_queue_used_bytes", "mpq_queue_capacity_bytes", "mpq_queue_processes",
		"mpq_queue_sealed", "mpq_queue_puts_total", "mpq_queue_gets_total", "mpq_queue_backed", "mpq_queues", "mpq_scrape_errors_total",
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Every metric is there for each queue: 23 series per queue (the
	// waiting gauge has two), and the four of the directory (two of its
	// file system).
	if got, want := testutil.CollectAndCount(c), 2*23+4; got != want {
		t.Errorf("CollectAndCount = %d; want %d", got, want)
	}
	if log.Len() != 0 {
		t.Errorf("log: %q; want nothing", log.String())
	}
}

// TestCollectorLint checks the metrics with promlint and the pedantic
// registry, which checks them against their descriptions.
func TestCollectorLint(t *testing.T) {
	dir := t.TempDir()
	serveQueue(t, dir, "jobs", "x")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newQueueCollector(dir, io.Discard))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorBadQueue checks that a file that is not a queue is left out
// of the scrape, counted and reported once, while the other queues are
// still scraped.
func TestCollectorBadQueue(t *testing.T) {
	dir := t.TempDir()
	serveQueue(t, dir, "good", "x")
	if err := os.WriteFile(filepath.Join(dir, "bad.mpq"), []byte("not a queue"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	c := newQueueCollector(dir, &log)
	for scrape := 1; scrape <= 2; scrape++ {
		want := fmt.Sprintf(`
# HELP mpq_queue_messages Messages waiting in the queue, given back ones included.
# TYPE mpq_queue_messages gauge
mpq_queue_messages{queue="good"} 1
# HELP mpq_queues Queues in the directory.
# TYPE mpq_queues gauge
mpq_queues 2
# HELP mpq_scrape_errors_total Times a queue, or the directory, could not be read for a scrape (the queue is then left out of it).
# TYPE mpq_scrape_errors_total counter
mpq_scrape_errors_total %d
`, scrape)
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "mpq_queue_messages", "mpq_queues", "mpq_scrape_errors_total"); err != nil {
			t.Errorf("scrape %d: %v", scrape, err)
		}
	}
	if got := strings.Count(log.String(), "\n"); got != 1 || !strings.Contains(log.String(), "leaving queue bad out of the metrics") {
		t.Errorf("log after 2 scrapes: %q; want one line about queue bad", log.String())
	}

	// Once the file is gone, so is its error: a new bad file of the
	// same name is reported again.
	if err := os.Remove(filepath.Join(dir, "bad.mpq")); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "mpq_queue_messages"); n != 1 {
		t.Errorf("mpq_queue_messages: %d series; want 1", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.mpq"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.CollectAndCount(c)
	if got := strings.Count(log.String(), "\n"); got != 2 {
		t.Errorf("log: %q; want 2 lines", log.String())
	}
}

func TestCollectorMissingDir(t *testing.T) {
	var log strings.Builder
	c := newQueueCollector(filepath.Join(t.TempDir(), "none"), &log)
	want := `
# HELP mpq_queues Queues in the directory.
# TYPE mpq_queues gauge
mpq_queues 0
# HELP mpq_scrape_errors_total Times a queue, or the directory, could not be read for a scrape (the queue is then left out of it).
# TYPE mpq_scrape_errors_total counter
mpq_scrape_errors_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if log.Len() != 0 {
		t.Errorf("log: %q; want nothing", log.String())
	}
}

// TestCollectorWaiting checks that a process asleep in Get shows in
// mpq_queue_waiting_processes{for="data"}.
func TestCollectorWaiting(t *testing.T) {
	dir := t.TempDir()
	q := serveQueue(t, dir, "idle")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := q.Get(ctx)
		got <- err
	}()
	c := newQueueCollector(dir, io.Discard)
	waiting := func(what string) float64 {
		return serveValue(t, c, "mpq_queue_waiting_processes", "idle", "for", what)
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting("data") != 1 {
		if time.Now().After(deadline) {
			t.Fatal(`mpq_queue_waiting_processes{for="data"} is not 1 while Get waits`)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := waiting("space"); n != 0 {
		t.Errorf(`mpq_queue_waiting_processes{for="space"} = %v; want 0`, n)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v; want context.Canceled", err)
	}
}

// serveValue collects c and returns the value of the series of metric name
// for queue, with the other label pairs given.
func serveValue(t testing.TB, c prometheus.Collector, name, queue string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	v, ok := seriesValue(byName, name, append([]string{"queue", queue}, labels...)...)
	if !ok {
		t.Fatalf("no series %s{queue=%q %q}", name, queue, labels)
	}
	return v
}

// seriesValue returns the value of the gauge or counter series of metric
// name with the label pairs given (name, value, name, value...), and
// whether there is one.
func seriesValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue series
			}
		}
		switch f.GetType() {
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// serveStart runs mpq serve on a free port for the queues of dir and
// returns the URL of its metrics page and the command, which the test
// must wait for. The rest of its standard error, after the first line,
// goes to *rest until the channel returned is closed.
func serveStart(t *testing.T, ctx context.Context, dir string, rest *strings.Builder) (string, *exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.CommandContext(ctx, mpqBin, "serve", "--dir", dir, "--metrics", "127.0.0.1:0")
	cmd.WaitDelay = 5 * time.Second
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	err = cmd.Start()
	pw.Close() // the child has its own copy: pr reads EOF when it exits
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	lines := bufio.NewScanner(pr)
	// A server that never says where it listens must fail the test, not
	// hang it: killing it ends the read.
	silent := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	if !lines.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("mpq serve printed nothing on stderr within 30s: %v", lines.Err())
	}
	silent.Stop()
	first := lines.Text()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
	}()
	m := regexp.MustCompile(`^mpq: serving metrics for (.*) on (http://127\.0\.0\.1:[0-9]+/metrics)$`).FindStringSubmatch(first)
	if m == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("mpq serve: first line %q; want mpq: serving metrics for DIR on http://127.0.0.1:PORT/metrics", first)
	}
	if m[1] != dir {
		t.Errorf("mpq serve serves %s; want %s", m[1], dir)
	}
	return m[2], cmd, drained
}

// serveScrape gets url and parses the metrics there.
func serveScrape(t testing.TB, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return fams
}

// TestServeMetrics runs mpq serve, scrapes it as queues change, then
// interrupts it.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	jobs := serveQueue(t, dir, "jobs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rest strings.Builder
	url, cmd, drained := serveStart(t, ctx, dir, &rest)
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	check := func(when string, fams map[string]*dto.MetricFamily, name string, want float64, labels ...string) {
		t.Helper()
		got, ok := seriesValue(fams, name, labels...)
		if !ok {
			t.Errorf("%s: no series %s%q", when, name, labels)
		} else if got != want {
			t.Errorf("%s: %s%q = %v; want %v", when, name, labels, got, want)
		}
	}
	fams := serveScrape(t, url)
	check("empty", fams, "mpq_queue_messages", 0, "queue", "jobs")
	check("empty", fams, "mpq_queues", 1)
	if f := fams["mpq_queue_puts_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("mpq_queue_puts_total is a %v; want a counter", f.GetType())
	}
	if f := fams["mpq_queue_messages"]; f.GetType() != dto.MetricType_GAUGE {
		t.Errorf("mpq_queue_messages is a %v; want a gauge", f.GetType())
	}

	for _, m := range []string{"one", "two", "three"} {
		if err := jobs.Put(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	fams = serveScrape(t, url)
	check("after 3 puts", fams, "mpq_queue_messages", 3, "queue", "jobs")
	check("after 3 puts", fams, "mpq_queue_puts_total", 3, "queue", "jobs")

	if _, err := jobs.Get(ctx); err != nil {
		t.Fatal(err)
	}
	serveQueue(t, dir, "later", "x")
	fams = serveScrape(t, url)
	check("after a get", fams, "mpq_queue_messages", 2, "queue", "jobs")
	check("after a get", fams, "mpq_queue_gets_total", 1, "queue", "jobs")
	check("after a get", fams, "mpq_queue_messages", 1, "queue", "later")
	check("after a get", fams, "mpq_queues", 2)
	check("after a get", fams, "mpq_scrape_errors_total", 0)

	resp, err := http.Get(strings.TrimSuffix(url, "metrics"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `href="metrics"`) {
		t.Errorf("GET /: %s %v\n%s\nwant a link to metrics", resp.Status, err, page)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("mpq serve after SIGINT: %v; want exit status 0", err)
	}
	<-drained
	if rest.Len() != 0 {
		t.Errorf("mpq serve wrote more on stderr:\n%s", rest.String())
	}
}

func TestServeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, exitUsage, "--metrics ADDR is required"},
		{[]string{"serve", "--metrics"}, exitUsage, "flag needs an argument"},
		{[]string{"serve", "--metrics", "127.0.0.1:0", "extra"}, exitUsage, "want no arguments"},
		{[]string{"serve", "--metrics", "no-such-host.invalid:x"}, exitFailure, "mpq: serve:"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, mpqBin, append([]string{"--dir", t.TempDir()}, tc.args...)...)
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("mpq %q: exit status %d (%v), output:\n%s\nwant status %d and %q", tc.args, code, err, out, tc.code, tc.want)
			}
		})
	}
}

// TestServeAddrInUse checks that serve fails when it cannot listen.
func TestServeAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpqBin, "serve", "--dir", t.TempDir(), "--metrics", ln.Addr().String())
	cmd.WaitDelay = 5 * time.Second
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitFailure || !strings.Contains(string(out), "address already in use") {
		t.Errorf("mpq serve on a busy address: exit status %d, output:\n%s\nwant status %d, address already in use", code, out, exitFailure)
	}
}

func TestServeHelp(t *testing.T) {
	out, err := exec.Command(mpqBin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("mpq serve --help: %v\n%s", err, out)
	}
	for _, want := range []string{"Examples:", "mpq serve --metrics 127.0.0.1:9464", "--metrics ADDR"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("mpq serve --help lacks %q:\n%s", want, out)
		}
	}
}
