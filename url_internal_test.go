package mpq

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nats://alice:s3cret@host:4222/jobs", "nats://alice:xxxxx@host:4222/jobs"},
		{"//alice:s3cret@host/jobs", "//alice:xxxxx@host/jobs"},
		{"nats://alice:s3cret@[::1/jobs", "nats://alice:xxxxx@[::1/jobs"},
		{"nats://alice@host/jobs", "nats://alice@host/jobs"},
		{"nats://host/jobs?x=a:b@c", "nats://host/jobs?x=a:b@c"},
		{"a nats://u:p@h/x and nats://v:q@i/y", "a nats://u:xxxxx@h/x and nats://v:xxxxx@i/y"},
		{"shm:jobs", "shm:jobs"},
	} {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestSHMName(t *testing.T) {
	for _, c := range []struct {
		in   string
		name string
		ok   bool
	}{
		{"shm:jobs", "jobs", true},
		{"shm:jobs?dir=/tmp", "jobs", true},
		{"shm:///jobs", "jobs", true},
		{"shm://jobs", "jobs", true},
		{"shm://a/b", "", false},
		{"shm://u:p@jobs", "", false},
		{"shm://", "", false},
		{"shm:", "", false},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", c.in, err)
		}
		if name, ok := shmName(u); name != c.name || ok != c.ok {
			t.Errorf("shmName(%q) = %q, %v; want %q, %v", c.in, name, ok, c.name, c.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"4096", 4096, true},
		{"64KiB", 64 << 10, true},
		{"16MiB", 16 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1024GiB", 1 << 40, true},
		{"1025GiB", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"1KB", 0, false}, // only the binary suffixes
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{" 1", 0, false},
	} {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseURL(t *testing.T) {
	name, opts, err := ParseURL("shm:jobs?dir=/var/lib/app&capacity=64KiB&durable=true&lease=30s")
	if err != nil || name != "jobs" || opts.Dir != "/var/lib/app" || opts.Capacity != 64<<10 || !opts.Durable || opts.Lease != 30*time.Second {
		t.Fatalf("ParseURL = %q, %+v, %v", name, opts, err)
	}
	for _, c := range []struct{ in, want string }{
		{"nats://h/jobs", "is not a shm: URL"},
		{"shm:", "names no queue"},
		{"shm:jobs?capacity=12XB", `parameter capacity="12XB"`},
		{"shm:jobs?size=1", `unknown parameter "size"`},
		{"shm:jobs?lease=1s&lease=2s", "given 2 times"},
		{"shm://u:secret@h/x", "xxxxx"},
		{"%", "invalid URL escape"},
	} {
		_, _, err := ParseURL(c.in)
		if !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseURL(%q) = %v; want ErrInvalidURL saying %q", c.in, err, c.want)
		}
	}
}
