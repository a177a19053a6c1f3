package natsq_test

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/natsq"
)

// URLs that fail before any connection: the host, 127.0.0.1:1, has no
// server, so a URL that got as far as dialling would fail otherwise.
func TestOpenURLInvalid(t *testing.T) {
	const h = "nats://127.0.0.1:1"
	for _, tc := range []struct {
		url  string
		also error // wrapped too, besides mpq.ErrInvalidURL
	}{
		{h, nil},                 // no name
		{h + "/", nil},           // empty name
		{h + "/a/b", nil},        // two names
		{"nats:///jobs", nil},    // no server
		{"nats:jobs", nil},       // opaque
		{h + "/jobs?%zz", nil},   // bad query
		{"nats://%zz/jobs", nil}, // bad host
		{h + "/jo.bs", mpq.ErrInvalidName},
		{h + "/jo*bs", mpq.ErrInvalidName},
		{h + "/j%20obs", mpq.ErrInvalidName},
		{h + "/" + strings.Repeat("a", 201), mpq.ErrInvalidName},
		{h + "/jobs?bogus=1", nil},
		{h + "/jobs?max-msgs=1&max-msgs=2", nil}, // repeated
		{h + "/jobs?lease=1s", nil},              // shm's parameter, not NATS's
		{h + "/jobs?max-msgs=many", nil},
		{h + "/jobs?max-msgs=-5", mpq.ErrInvalidOptions},
		{h + "/jobs?max-bytes=1XB", nil},
		{h + "/jobs?max-message=3GiB", nil},
		{h + "/jobs?memory=maybe", nil},
		{h + "/jobs?replicas=two", nil},
		{h + "/jobs?ack-wait=5", nil},
		{h + "/jobs?ack-wait=-1s", mpq.ErrInvalidOptions},
		{h + "/jobs?ack-wait=1us", mpq.ErrInvalidOptions},
		{h + "/jobs?max-deliveries=-1", mpq.ErrInvalidOptions},
		{h + "/jobs?dead-letter=a.b", mpq.ErrInvalidOptions},
		{h + "/jobs?prefetch=20000", mpq.ErrInvalidOptions},
		{h + "/jobs?poll=soon", nil},
		{h + "/jobs?timeout=-1s", mpq.ErrInvalidOptions},
		{h + "/jobs?no-create=perhaps", nil},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		q, err := mpq.OpenURL(ctx, tc.url)
		cancel()
		if err == nil {
			q.Close()
			t.Errorf("OpenURL(%q) opened a queue", tc.url)
			continue
		}
		if !errors.Is(err, mpq.ErrInvalidURL) || tc.also != nil && !errors.Is(err, tc.also) {
			t.Errorf("OpenURL(%q): %v; want ErrInvalidURL and %v", tc.url, err, tc.also)
		}
		if _, _, _, perr := natsq.ParseURL(tc.url); !errors.Is(perr, mpq.ErrInvalidURL) {
			t.Errorf("ParseURL(%q): %v, want ErrInvalidURL", tc.url, perr)
		}
		if _, err := natsq.OpenURL(context.Background(), tc.url); !errors.Is(err, mpq.ErrInvalidURL) {
			t.Errorf("natsq.OpenURL(%q): %v, want ErrInvalidURL", tc.url, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	server, name, o, err := natsq.ParseURL("NATS://u:p@127.0.0.1:4222/jobs?max-msgs=10&max-bytes=1MiB&max-message=2KiB&memory=true" +
		"&replicas=3&ack-wait=5s&max-deliveries=4&dead-letter=dead&prefetch=8&poll=50ms&timeout=2s&no-create=true")
	if err != nil {
		t.Fatal(err)
	}
	want := natsq.Options{MaxMsgs: 10, MaxBytes: 1 << 20, MaxMessage: 2 << 10, Memory: true, Replicas: 3,
		AckWait: 5 * time.Second, MaxDeliveries: 4, DeadLetter: "dead", Prefetch: 8, Poll: 50 * time.Millisecond,
		Timeout: 2 * time.Second, NoCreate: true}
	if server != "nats://u:p@127.0.0.1:4222" || name != "jobs" || *o != want {
		t.Fatalf("ParseURL = %q, %q, %+v", server, name, *o)
	}
	if _, _, o, err := natsq.ParseURL("nats://h/jobs"); err != nil || *o != (natsq.Options{}) {
		t.Fatalf("ParseURL without parameters = %+v, %v; want zero Options (the defaults)", o, err)
	}
}

// The server cannot be reached: an error soon (not ErrInvalidURL), no hang.
func TestOpenURLNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	q, err := mpq.OpenURL(ctx, "nats://127.0.0.1:1/jobs")
	if err == nil {
		q.Close()
		t.Fatal("OpenURL opened a queue on no server")
	}
	if errors.Is(err, mpq.ErrInvalidURL) {
		t.Fatalf("OpenURL with no server: %v, want a connection error, not ErrInvalidURL", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("OpenURL with no server took %v: %v", waitLong, err)
	}
}

func TestRegisterSchemeTwice(t *testing.T) {
	for _, scheme := range []string{"nats", "NATS", "shm"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterScheme(%q) again did not panic", scheme)
				}
			}()
			mpq.RegisterScheme(scheme, func(context.Context, *url.URL) (mpq.MessageQueue, error) { return nil, nil })
		}()
	}
	if s := mpq.Schemes(); strings.Join(s, ",") != "nats,shm" {
		t.Fatalf("Schemes() = %v, want [nats shm] (importing natsq registers nats)", s)
	}
}

func connectTo(t *testing.T, addr string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestNoCreate(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	ctx := timeout(t, waitLong)
	_, err := mpq.OpenURL(ctx, queueURL(s, "missing", "no-create=true"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenURL no-create of a missing queue: %v, want fs.ErrNotExist", err)
	}
	nc := connectTo(t, s.Addr().String())
	_, err = natsq.Open(ctx, nc, "missing", &natsq.Options{NoCreate: true})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open NoCreate of a missing queue: %v, want fs.ErrNotExist", err)
	}
	// Nothing was created on the way.
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx, "missing"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream after a failed no-create Open: %v", err)
	}
	// Once it exists, no-create opens it.
	q := openQ(t, queueURL(s, "missing", ""))
	put(t, q, []byte("x"))
	q2 := openQ(t, queueURL(s, "missing", "no-create=true"))
	get(t, q2, []byte("x"))

	// A stream without the consumer is not a queue either.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "bare", Subjects: []string{natsq.Subject("bare")},
		Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsq.Open(ctx, nc, "bare", &natsq.Options{NoCreate: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open NoCreate of a stream with no consumer: %v, want fs.ErrNotExist", err)
	}
}

// Streams and consumers that are not what natsq makes: ErrIncompatible.
func TestIncompatible(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	ctx := timeout(t, waitLong)
	nc := connectTo(t, s.Addr().String())
	js, _ := jetstream.New(nc)
	for _, ret := range []jetstream.RetentionPolicy{jetstream.LimitsPolicy, jetstream.InterestPolicy} {
		name := "ret" + ret.String()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{natsq.Subject(name)}, Retention: ret}); err != nil {
			t.Fatal(err)
		}
		_, err := natsq.Open(ctx, nc, name, nil)
		if !errors.Is(err, mpq.ErrIncompatible) {
			t.Fatalf("Open of a stream with %v retention: %v, want ErrIncompatible", ret, err)
		}
		_, err = mpq.OpenURL(ctx, queueURL(s, name, ""))
		if !errors.Is(err, mpq.ErrIncompatible) {
			t.Fatalf("OpenURL of a stream with %v retention: %v, want ErrIncompatible", ret, err)
		}
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "push", Subjects: []string{natsq.Subject("push")},
		Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	// (The server refuses a pull consumer that does not ack explicitly on a
	// work queue.) A push consumer "mpq".
	if _, err := st.CreatePushConsumer(ctx, jetstream.ConsumerConfig{Durable: natsq.ConsumerName,
		AckPolicy: jetstream.AckExplicitPolicy, DeliverSubject: "somewhere"}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsq.Open(ctx, nc, "push", nil); !errors.Is(err, mpq.ErrIncompatible) {
		t.Fatalf("Open of a queue whose consumer is a push consumer: %v, want ErrIncompatible", err)
	}
}

// A queue removed under open handles: their calls fail with fs.ErrNotExist
// rather than hang or pretend the queue is empty.
func TestRemovedUnderHandle(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	ctx := timeout(t, waitLong)
	u := queueURL(s, "gone", "")
	q := openQ(t, u)
	put(t, q, []byte("x"))
	if err := natsq.RemoveURL(ctx, u); err != nil {
		t.Fatalf("RemoveURL: %v", err)
	}
	if err := natsq.RemoveURL(ctx, u); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RemoveURL of a removed queue: %v, want fs.ErrNotExist", err)
	}
	if err := q.Put(ctx, []byte("y")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Put on a removed queue: %v, want fs.ErrNotExist", err)
	}
	if m, err := q.Get(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get on a removed queue: %.10q, %v; want fs.ErrNotExist", m, err)
	}
	if _, err := q.TryReceive(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("TryReceive on a removed queue: %v, want fs.ErrNotExist", err)
	}
}

var validQueueName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// FuzzParseURL: ParseURL never panics; it fails with ErrInvalidURL, or
// returns a nats:// server URL with a host, a valid name and Options.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"nats://127.0.0.1:4222/jobs",
		"nats://u:p@h:1/jobs?max-msgs=10&max-bytes=1MiB&max-message=2KiB&memory=true&replicas=3",
		"nats://h/jobs?ack-wait=5s&max-deliveries=4&dead-letter=dead&prefetch=8&poll=50ms&timeout=2s&no-create=true",
		"nats://h/jobs?max-msgs=-1", "nats://h/jo.bs", "nats://h/", "nats:///x", "shm:jobs", "nats://h/a?b",
		"nats://[::1]:4222/q", "nats://h/x?max-message=2GiB", "nats://h/%41", "NATS://H/Q?MAX-MSGS=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		server, name, o, err := natsq.ParseURL(raw)
		if err != nil {
			if !errors.Is(err, mpq.ErrInvalidURL) {
				t.Fatalf("ParseURL(%q): %v, not ErrInvalidURL", raw, err)
			}
			return
		}
		if o == nil || !validQueueName.MatchString(name) {
			t.Fatalf("ParseURL(%q) = name %q, options %v", raw, name, o)
		}
		u, err := url.Parse(server)
		if err != nil || u.Scheme != "nats" || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			t.Fatalf("ParseURL(%q) = server %q (%v)", raw, server, err)
		}
	})
}

// Every function and method that takes a context.Context returns
// mpq.ErrNilContext at once when given nil, whether or not it would block,
// and changes nothing: no message put or taken, no queue made or removed.
func TestNilContext(t *testing.T) {
	var nilCtx context.Context
	s := startServer(t, t.TempDir(), 0)
	ctx := timeout(t, waitLong)
	nc := connectTo(t, s.Addr().String())
	for _, full := range []bool{false, true} {
		q, err := natsq.Open(ctx, nc, "nilctx", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		want := 0
		if full {
			if err := q.Put(ctx, []byte("kept")); err != nil {
				t.Fatal(err)
			}
			want = 1
		}
		url := "nats://" + s.Addr().String() + "/nilctx"
		for _, tt := range []struct {
			name string
			op   func() error
		}{
			{"Queue.Put", func() error { return q.Put(nilCtx, []byte("x")) }},
			{"Queue.Get", func() error { _, err := q.Get(nilCtx); return err }},
			{"Queue.Receive", func() error { _, err := q.Receive(nilCtx); return err }},
			{"Queue.Join", func() error { return q.Join(nilCtx) }},
			{"Queue.Stats", func() error { _, err := q.Stats(nilCtx); return err }},
			{"Open", func() error { _, err := natsq.Open(nilCtx, nc, "other", nil); return err }},
			{"Dial", func() error { _, err := natsq.Dial(nilCtx, "nats://"+s.Addr().String(), "other", nil); return err }},
			{"OpenURL", func() error { _, err := natsq.OpenURL(nilCtx, url); return err }},
			{"Remove", func() error { return natsq.Remove(nilCtx, nc, "nilctx") }},
			{"RemoveURL", func() error { return natsq.RemoveURL(nilCtx, url) }},
		} {
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- errors.New("panic")
					}
				}()
				done <- tt.op()
			}()
			select {
			case err := <-done:
				if !errors.Is(err, mpq.ErrNilContext) {
					t.Errorf("%s (message waiting: %v): got %v; want %v", tt.name, full, err, mpq.ErrNilContext)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s (message waiting: %v): still blocked after 10s; want %v at once", tt.name, full, mpq.ErrNilContext)
			}
			if n := q.Len(); n != want {
				t.Errorf("%s (message waiting: %v): Len after the call: got %d; want %d", tt.name, full, n, want)
			}
		}
		js, _ := jetstream.New(nc)
		if _, err := js.Stream(ctx, "other"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream of a queue opened with a nil context: got %v; want %v", err, jetstream.ErrStreamNotFound)
		}
		if full {
			if m, err := q.TryGet(); err != nil || string(m) != "kept" {
				t.Errorf("TryGet after the calls: got %q, %v; want %q, nil", m, err, "kept")
			}
		}
	}
}

// A message over the maximum says both sizes and the option; AckWait over
// mpq.MaxLease is refused.
func TestBadInputSizes(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	ctx := timeout(t, waitLong)
	nc := connectTo(t, s.Addr().String())
	q, err := natsq.Open(ctx, nc, "small", &natsq.Options{MaxMessage: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"Put", func() error { return q.Put(ctx, make([]byte, 101)) }},
		{"TryPut", func() error { return q.TryPut(make([]byte, 101)) }},
	} {
		err := tc.op()
		if !errors.Is(err, mpq.ErrTooLarge) {
			t.Errorf("%s: got %v; want %v", tc.name, err, mpq.ErrTooLarge)
			continue
		}
		for _, w := range []string{"message of 101 bytes", "queue small takes is 100", "Options.MaxMessage"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %q; want it to say %q", tc.name, err, w)
			}
		}
	}
	// Extend and NackAfter past mpq.MaxLease are refused, and the holder
	// keeps the message.
	if err := q.Put(ctx, []byte("held")); err != nil {
		t.Fatal(err)
	}
	d, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Extend(1<<63 - 1); !errors.Is(err, mpq.ErrInvalidOptions) {
		t.Errorf("Extend(math.MaxInt64): got %v; want %v", err, mpq.ErrInvalidOptions)
	}
	if err := d.NackAfter(1<<63 - 1); !errors.Is(err, mpq.ErrInvalidOptions) {
		t.Errorf("NackAfter(math.MaxInt64): got %v; want %v", err, mpq.ErrInvalidOptions)
	}
	if err := d.Ack(); err != nil {
		t.Errorf("Ack after the refused calls: got %v; want nil", err)
	}
	for _, o := range []natsq.Options{{AckWait: mpq.MaxLease + 1}, {AckWait: 1<<63 - 1}} {
		if q, err := natsq.Open(ctx, nc, "lease", &o); !errors.Is(err, mpq.ErrInvalidOptions) {
			t.Errorf("Open with AckWait %v: got %v; want %v", o.AckWait, err, mpq.ErrInvalidOptions)
			if err == nil {
				q.Close()
			}
		}
	}
}
