package mpq_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
)

// shmURL is the shm: URL of queue name in dir, with more parameters.
func shmURL(name, dir, more string) string {
	u := "shm:" + name + "?dir=" + url.QueryEscape(dir)
	if more != "" {
		u += "&" + more
	}
	return u
}

func openURL(t *testing.T, rawURL string) mpq.MessageQueue {
	t.Helper()
	q, err := mpq.OpenURL(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("OpenURL(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func TestOpenURLSHM(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openURL(t, shmURL("jobs", dir, ""))
	if _, ok := q.(*mpq.Queue); !ok {
		t.Fatalf("OpenURL(shm:) = %T, want *mpq.Queue", q)
	}
	if err := q.Put(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	// shm:///NAME and shm://NAME name the same queue as shm:NAME.
	for _, u := range []string{
		"shm:///jobs?dir=" + url.QueryEscape(dir),
		"shm://jobs?dir=" + url.QueryEscape(dir),
		"SHM:jobs?dir=" + url.QueryEscape(dir),
	} {
		if n := openURL(t, u).Len(); n != 1 {
			t.Fatalf("OpenURL(%q).Len() = %d, want 1: not the same queue", u, n)
		}
	}
	if m, err := q.Get(ctx); err != nil || string(m) != "one" {
		t.Fatalf("Get = %q, %v", m, err)
	}
}

// Each parameter sets its Options field.
func TestOpenURLParams(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openURL(t, shmURL("params", dir, "capacity=8KiB&max-message=100&lease=1h&max-deliveries=2&dead-letter=dl&durable=true"))
	st := q.(*mpq.Queue).Stats()
	if st.Capacity != 8<<10 || st.MaxMessage != 100 || st.MaxDeliveries != 2 || st.DeadLetter != "dl" || !st.Durable {
		t.Fatalf("Stats of a queue opened with parameters: %+v", st)
	}
	if err := q.TryPut(make([]byte, 101)); !errors.Is(err, mpq.ErrTooLarge) {
		t.Fatalf("TryPut over max-message: %v, want ErrTooLarge", err)
	}
	if err := q.Put(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	d, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := time.Until(d.Deadline()); l < 50*time.Minute || l > time.Hour {
		t.Fatalf("lease=1h: Deadline in %v", l)
	}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenURLInvalid(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		url  string
		also error  // wrapped too, besides ErrInvalidURL
		says string // in the message
	}{
		{"", nil, "no scheme"},
		{"jobs", nil, "no scheme"},
		{"/tmp/jobs", nil, "no scheme"},
		{"://jobs", nil, ""},
		{"foo:jobs", nil, `no backend for scheme "foo"`},
		{"redis://h/jobs", nil, "known: shm"},
		// Without importing natsq, a nats URL says what to import.
		{"nats://127.0.0.1:4222/jobs", nil, `import _ "github.com/mpq-go/mpq/natsq"`},
		{"shm:", nil, "names no queue"},
		{"shm:?dir=" + dir, nil, "names no queue"},
		{"shm:///", nil, "names no queue"},
		// A host and a path, or a user, name no queue (not "ab").
		{"shm://a/b?dir=" + url.QueryEscape(dir), nil, "names no queue"},
		{"shm://u:s3cret@jobs?dir=" + url.QueryEscape(dir), nil, "names no queue"},
		// Errors never show a password, even of a URL that does not parse.
		{"nats://u:s3cret@127.0.0.1:1/jo bs%zz", nil, "u:xxxxx@"},
		{"nats://u:s3cret@[::1/jobs", nil, "u:xxxxx@"},
		{"//u:s3cret@host/jobs", nil, "u:xxxxx@"},
		{shmURL("jobs", dir, "bogus=1"), nil, `unknown parameter "bogus"`},
		{shmURL("jobs", dir, "capacity=4KiB&capacity=8KiB"), nil, "capacity given 2 times"},
		{"shm:jobs?dir=" + url.QueryEscape(dir) + "&dir=" + url.QueryEscape(dir), nil, "dir given 2 times"},
		{shmURL("jobs", dir, "max-msgs=1"), nil, `unknown parameter "max-msgs"`}, // natsq's, not shm's
		{shmURL("jobs", dir, "%zz"), nil, ""},
		{shmURL("jobs", dir, "durable=maybe"), nil, "durable"},
		{shmURL("jobs", dir, "capacity=big"), nil, "capacity"},
		{shmURL("jobs", dir, "max-message=1XB"), nil, "max-message"},
		{shmURL("jobs", dir, "lease=soon"), nil, "lease"},
		{shmURL("jobs", dir, "max-deliveries=x"), nil, "max-deliveries"},
		{shmURL("jobs", dir, "max-deliveries=-1"), mpq.ErrInvalidOptions, ""},
		{shmURL("jobs", dir, "lease=-1s"), mpq.ErrInvalidOptions, ""},
		{shmURL("jobs", dir, "capacity=4KiB&max-message=4KiB"), mpq.ErrInvalidOptions, ""},
		{shmURL("jobs", dir, "dead-letter=a/b"), mpq.ErrInvalidOptions, ""},
		{shmURL(".hidden", dir, ""), mpq.ErrInvalidName, ""},
		{shmURL("a/b", dir, ""), mpq.ErrInvalidName, ""},
		{"shm:" + strings.Repeat("a", 201) + "?dir=" + url.QueryEscape(dir), mpq.ErrInvalidName, ""},
	} {
		q, err := mpq.OpenURL(context.Background(), tc.url)
		if err == nil {
			q.Close()
			t.Errorf("OpenURL(%q) opened a queue", tc.url)
			continue
		}
		if !errors.Is(err, mpq.ErrInvalidURL) || tc.also != nil && !errors.Is(err, tc.also) {
			t.Errorf("OpenURL(%q): %v; want ErrInvalidURL and %v", tc.url, err, tc.also)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("OpenURL(%q): %q shows the password", tc.url, err)
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("OpenURL(%q): %q does not say %q", tc.url, err, tc.says)
		}
	}
}

func TestOpenURLContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mpq.OpenURL(ctx, shmURL("jobs", t.TempDir(), "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenURL with a cancelled context: %v, want context.Canceled", err)
	}
}

// fakeQueue is a MessageQueue of a scheme registered by the test.
type fakeQueue struct {
	mpq.MessageQueue
	u *url.URL
}

var (
	registerOnce sync.Once // registrations last for the process: -count=N
	urltestCalls atomic.Int64
)

func TestRegisterScheme(t *testing.T) {
	registerOnce.Do(func() {
		mpq.RegisterScheme("URLTest", func(ctx context.Context, u *url.URL) (mpq.MessageQueue, error) {
			urltestCalls.Add(1)
			if u.Query().Get("fail") != "" {
				return nil, errors.New("told to fail")
			}
			return fakeQueue{u: u}, nil
		})
	})
	before := urltestCalls.Load()
	if s := mpq.Schemes(); !slices.Contains(s, "urltest") || !slices.Contains(s, "shm") || !slices.IsSorted(s) {
		t.Fatalf("Schemes() = %v, want shm and urltest, sorted", s)
	}
	// Schemes are case-insensitive, as in RFC 3986.
	q, err := mpq.OpenURL(context.Background(), "urlTEST://host:1/name?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := q.(fakeQueue); !ok || f.u.Host != "host:1" || f.u.Path != "/name" || f.u.Query().Get("x") != "1" {
		t.Fatalf("OpenURL of a registered scheme = %#v", q)
	}
	// The opener's errors come back as they are.
	if _, err := mpq.OpenURL(context.Background(), "urltest://h/n?fail=1"); err == nil || err.Error() != "told to fail" {
		t.Fatalf("OpenURL with a failing opener: %v", err)
	}
	// A done context stops OpenURL before the opener.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mpq.OpenURL(ctx, "urltest://h/n"); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenURL with a cancelled context: %v", err)
	}
	if calls := urltestCalls.Load() - before; calls != 2 {
		t.Fatalf("opener called %d times, want 2", calls)
	}

	for _, tc := range []struct {
		scheme string
		open   mpq.Opener
	}{
		{"urltest", func(context.Context, *url.URL) (mpq.MessageQueue, error) { return nil, nil }},
		{"URLTEST", func(context.Context, *url.URL) (mpq.MessageQueue, error) { return nil, nil }},
		{"shm", func(context.Context, *url.URL) (mpq.MessageQueue, error) { return nil, nil }},
		{"other", nil},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterScheme(%q, %v) did not panic", tc.scheme, tc.open != nil)
				}
			}()
			mpq.RegisterScheme(tc.scheme, tc.open)
		}()
	}
	if slices.Contains(mpq.Schemes(), "other") {
		t.Fatal("RegisterScheme with a nil Opener registered it")
	}
}
