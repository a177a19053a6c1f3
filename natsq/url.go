package natsq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mpq-go/mpq"
)

func init() { mpq.RegisterScheme("nats", openURL) }

// ParseURL splits a queue URL, nats://[USER[:PASSWORD]@]HOST[:PORT]/NAME[?PARAMS],
// into the server's URL, the queue's name and its Options. The parameters
// set the Options fields of the same meaning: max-msgs, max-bytes,
// max-message (sizes take KiB, MiB and GiB suffixes), memory (true or false),
// replicas, ack-wait (a duration such as 30s), max-deliveries, dead-letter,
// prefetch, poll, timeout and no-create. Errors wrap mpq.ErrInvalidURL.
func ParseURL(rawURL string) (server, name string, opts *Options, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", nil, fmt.Errorf("%w: %s: %v", mpq.ErrInvalidURL, mpq.RedactURL(rawURL), urlError(err))
	}
	return parseURL(u)
}

// parseURL is ParseURL on a URL already parsed.
func parseURL(u *url.URL) (server, name string, opts *Options, err error) {
	if !strings.EqualFold(u.Scheme, "nats") {
		return "", "", nil, fmt.Errorf("%w: %q: want nats://HOST:PORT/NAME", mpq.ErrInvalidURL, u.Redacted())
	}
	if u.Host == "" {
		return "", "", nil, fmt.Errorf("%w: %q has no server; want nats://HOST:PORT/NAME", mpq.ErrInvalidURL, u.Redacted())
	}
	name = strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.Contains(name, "/") {
		return "", "", nil, fmt.Errorf("%w: %q: want one queue name after the server, as in nats://HOST:PORT/NAME", mpq.ErrInvalidURL, u.Redacted())
	}
	if err := validName(name); err != nil {
		return "", "", nil, fmt.Errorf("%w: %w", mpq.ErrInvalidURL, err)
	}
	s := url.URL{Scheme: "nats", User: u.User, Host: u.Host}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", nil, fmt.Errorf("%w: %q: %v", mpq.ErrInvalidURL, u.Redacted(), err)
	}
	opts = &Options{}
	params := opts.urlParams()
	for key, vals := range query {
		if len(vals) > 1 {
			return "", "", nil, fmt.Errorf("%w: parameter %s given %d times in %q; give it once", mpq.ErrInvalidURL, key, len(vals), u.Redacted())
		}
		set, ok := params[key]
		if !ok {
			return "", "", nil, fmt.Errorf("%w: unknown parameter %q in %q", mpq.ErrInvalidURL, key, u.Redacted())
		}
		if err := set(vals[0]); err != nil {
			return "", "", nil, fmt.Errorf("%w: parameter %s=%q: %v", mpq.ErrInvalidURL, key, vals[0], err)
		}
	}
	if _, err := opts.withDefaults(); err != nil {
		return "", "", nil, fmt.Errorf("%w: %w", mpq.ErrInvalidURL, err)
	}
	return s.String(), name, opts, nil
}

// urlParams maps each URL parameter to the function that parses its value
// into the field of o it sets.
func (o *Options) urlParams() map[string]func(string) error {
	return map[string]func(string) error{
		"max-msgs":       setter(&o.MaxMsgs, func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }),
		"max-bytes":      setter(&o.MaxBytes, func(v string) (int64, error) { n, err := mpq.ParseSize(v); return int64(n), err }),
		"max-message":    setter(&o.MaxMessage, parseMessageSize),
		"memory":         setter(&o.Memory, strconv.ParseBool),
		"replicas":       setter(&o.Replicas, strconv.Atoi),
		"ack-wait":       setter(&o.AckWait, time.ParseDuration),
		"max-deliveries": setter(&o.MaxDeliveries, strconv.Atoi),
		"dead-letter":    setter(&o.DeadLetter, func(v string) (string, error) { return v, nil }),
		"prefetch":       setter(&o.Prefetch, strconv.Atoi),
		"poll":           setter(&o.Poll, time.ParseDuration),
		"timeout":        setter(&o.Timeout, time.ParseDuration),
		"no-create":      setter(&o.NoCreate, strconv.ParseBool),
	}
}

// setter returns a function that parses a value with parse into *field.
func setter[T any](field *T, parse func(string) (T, error)) func(string) error {
	return func(v string) (err error) {
		*field, err = parse(v)
		return err
	}
}

// parseMessageSize parses a size that must fit Options.MaxMessage.
func parseMessageSize(v string) (int32, error) {
	n, err := mpq.ParseSize(v)
	if err == nil && n > 1<<31-1 {
		err = fmt.Errorf("%d is over 2 GiB", n)
	}
	return int32(n), err
}

// OpenURL opens the queue a nats:// URL names (see ParseURL), on a
// connection of its own that Close closes. mpq.OpenURL calls it for nats:
// URLs once this package is imported.
func OpenURL(ctx context.Context, rawURL string) (*Queue, error) {
	if ctx == nil {
		return nil, mpq.ErrNilContext
	}
	server, name, opts, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return Dial(ctx, server, name, opts)
}

// openURL is OpenURL for mpq.OpenURL, which has parsed the URL already.
func openURL(ctx context.Context, u *url.URL) (mpq.MessageQueue, error) {
	server, name, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	q, err := Dial(ctx, server, name, opts)
	if err != nil {
		return nil, err
	}
	return q, nil
}

// urlError is the reason url.Parse gave, without the URL itself (which
// url.Error quotes, password and all).
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
