package mpq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// openSHM opens a shm: URL for [OpenURL].
func openSHM(ctx context.Context, u *url.URL) (MessageQueue, error) {
	name, opts, err := parseSHM(u)
	if err != nil {
		return nil, err
	}
	q, err := OpenContext(ctx, name, opts)
	if errors.Is(err, ErrInvalidOptions) || errors.Is(err, ErrInvalidName) {
		// A bad value in the URL, as natsq says too.
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ParseURL parses a shm: URL as [OpenURL] reads it, without opening the
// queue: the queue's name and the [Options] its parameters set. It is for
// programs that take queue URLs and want to check one, or show what it
// names, before opening it. Errors wrap [ErrInvalidURL].
func ParseURL(rawURL string) (name string, opts *Options, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s: %v", ErrInvalidURL, RedactURL(rawURL), urlParseError(err))
	}
	if !strings.EqualFold(u.Scheme, "shm") {
		return "", nil, fmt.Errorf("%w: %s is not a shm: URL; want shm:NAME", ErrInvalidURL, RedactURL(rawURL))
	}
	return parseSHM(u)
}

// parseSHM reads a shm: URL: shm:NAME, or shm:///NAME and shm://NAME, and
// its parameters.
func parseSHM(u *url.URL) (string, *Options, error) {
	name, ok := shmName(u)
	if !ok {
		return "", nil, fmt.Errorf("%w: %q names no queue; want shm:NAME", ErrInvalidURL, u.Redacted())
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %q: %v", ErrInvalidURL, u.Redacted(), err)
	}
	opts := &Options{}
	for key, vals := range query {
		if len(vals) > 1 {
			return "", nil, fmt.Errorf("%w: parameter %s given %d times in %q; give it once", ErrInvalidURL, key, len(vals), u.Redacted())
		}
		if err := opts.setParam(key, vals[0]); err != nil {
			return "", nil, fmt.Errorf("%w: %v in %q", ErrInvalidURL, err, u.Redacted())
		}
	}
	return name, opts, nil
}

// setParam sets the field of o that a shm: URL's parameter key names.
func (o *Options) setParam(key, v string) error {
	var err error
	switch key {
	case "dir":
		o.Dir = v
	case "durable":
		o.Durable, err = strconv.ParseBool(v)
	case "capacity":
		o.Capacity, err = ParseSize(v)
	case "max-message":
		o.MaxMessage, err = ParseSize(v)
	case "lease":
		o.Lease, err = time.ParseDuration(v)
	case "max-deliveries":
		o.MaxDeliveries, err = strconv.Atoi(v)
	case "dead-letter":
		o.DeadLetter = v
	default:
		return fmt.Errorf("unknown parameter %q", key)
	}
	if err != nil {
		return fmt.Errorf("parameter %s=%q: %v", key, v, err)
	}
	return nil
}

// shmName returns the queue name of a shm: URL. A URL with a user, or with
// both a host and a path, names no queue: ("", false).
func shmName(u *url.URL) (string, bool) {
	if u.Opaque != "" {
		return u.Opaque, u.User == nil
	}
	if u.User != nil {
		return "", false
	}
	path := strings.TrimPrefix(u.Path, "/")
	if u.Host != "" && path != "" {
		return "", false
	}
	return u.Host + path, u.Host+path != ""
}

// ParseSize parses a byte count as queue URLs give them: 4096, 64KiB,
// 16MiB or 1GiB, at most 1 TiB. Backends registered with [RegisterScheme]
// use it for their own size parameters.
func ParseSize(s string) (int, error) {
	t, mult := s, 1
	for _, suf := range []struct {
		s string
		m int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(t, suf.s) {
			t, mult = t[:len(t)-len(suf.s)], suf.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/int64(mult) {
		return 0, fmt.Errorf("bad size %q: want a byte count such as 4096, 64KiB or 16MiB", s)
	}
	return int(n) * mult, nil
}

// RedactURL hides the password of every URL in s as written, even one that
// does not parse: in "scheme://user:pass@host" and "//user:pass@host" the
// password becomes xxxxx. Use it on anything that may quote a queue URL
// before printing or logging it.
func RedactURL(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "//")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+2])
		s = s[i+2:]
		end := strings.IndexAny(s, "/?# \t\n\"'")
		if end < 0 {
			end = len(s)
		}
		at := strings.LastIndex(s[:end], "@")
		if at < 0 {
			continue
		}
		if colon := strings.Index(s[:at], ":"); colon >= 0 {
			b.WriteString(s[:colon+1] + "xxxxx")
			s = s[at:]
		}
	}
}

// urlParseError is the reason url.Parse gave, without the URL itself
// (which url.Error quotes, password and all).
func urlParseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
