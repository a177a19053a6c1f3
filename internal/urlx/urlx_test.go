package urlx

import (
	"net/url"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nats://alice:s3cret@host:4222/jobs", "nats://alice:xxxxx@host:4222/jobs"},
		{"//alice:s3cret@host/jobs", "//alice:xxxxx@host/jobs"},
		{"nats://alice:s3cret@[::1/jobs", "nats://alice:xxxxx@[::1/jobs"},
		{"nats://alice@host/jobs", "nats://alice@host/jobs"},
		{"nats://host/jobs?x=a:b@c", "nats://host/jobs?x=a:b@c"},
		{"a nats://u:p@h/x and nats://v:q@i/y", "a nats://u:xxxxx@h/x and nats://v:xxxxx@i/y"},
		{"shm:jobs", "shm:jobs"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q; want %q", c.in, got, c.want)
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
		if name, ok := SHMName(u); name != c.name || ok != c.ok {
			t.Errorf("SHMName(%q) = %q, %v; want %q, %v", c.in, name, ok, c.name, c.ok)
		}
	}
}
