package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/natsq" // registers nats:// with mpq.OpenURL
)

// urlHelp is what the help of the commands that take a queue URL says of it.
const urlHelp = `NAME may also be a queue URL, as mpq.OpenURL takes it: shm:NAME[?PARAMS]
for a queue in shared memory (in --dir unless the URL has dir=), or
nats://[USER[:PASSWORD]@]HOST[:PORT]/NAME[?PARAMS] for a queue on a NATS
JetStream server (see the github.com/mpq-go/mpq/natsq package for the parameters).`

// shmParams are the parameters a shm: URL takes (see mpq.OpenURL).
var shmParams = []string{"dir", "durable", "capacity", "max-message", "lease", "max-deliveries", "dead-letter"}

// isURL reports whether a NAME argument is a queue URL rather than a name.
func isURL(arg string) bool {
	return strings.Contains(arg, "://") || strings.HasPrefix(arg, "shm:")
}

// looksLikeURL reports whether a --dir or dir= value is a URL rather than
// a directory: it has a scheme, "nats://…" or "shm:…" (a directory of
// that name is still reached as ./shm:…).
func looksLikeURL(dir string) bool {
	scheme, _, ok := strings.Cut(dir, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/.") {
		return false
	}
	for _, c := range scheme {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-') {
			return false
		}
	}
	lower := strings.ToLower(dir)
	return isURL(lower) || strings.HasPrefix(lower, "nats:")
}

// A queueRef is the queue a command's NAME argument names: a plain name in
// the queue directory, or a queue URL.
type queueRef struct {
	e      *env
	name   string   // the queue's name
	u      *url.URL // nil for a plain name
	scheme string   // "shm" or "nats"; "" for a plain name
	dir    string   // the directory of a plain name or a shm: URL
	server string   // nats: the server's URL, without a password
}

// ref parses a NAME argument. A URL that cannot be a queue's is a usage
// error naming what is wrong with it.
func (e *env) ref(arg string) (*queueRef, error) {
	if !isURL(arg) {
		return &queueRef{e: e, name: arg, dir: e.queueDir()}, nil
	}
	u, err := url.Parse(arg)
	if err != nil {
		return nil, usage("%s is not a queue URL: %v", mpq.RedactURL(arg), urlError(err))
	}
	r := &queueRef{e: e, u: u, scheme: strings.ToLower(u.Scheme)}
	switch r.scheme {
	case "shm":
		if err := r.checkParams(shmParams, checkSHMParam); err != nil {
			return nil, err
		}
		name, _, err := mpq.ParseURL(arg)
		if err != nil {
			return nil, r.invalid(err)
		}
		r.name = name
		r.dir = u.Query().Get("dir")
		if r.dir == "" {
			r.dir = e.queueDir()
		}
	case "nats":
		if err := r.checkParams(nil, nil); err != nil {
			return nil, err
		}
		server, name, _, err := natsq.ParseURL(arg)
		if err != nil {
			return nil, r.invalid(err)
		}
		su, _ := url.Parse(server)
		r.name, r.server = name, su.Redacted()
	default:
		return nil, usage("%s: no backend for scheme %q; want shm:NAME or nats://HOST:PORT/NAME", r, u.Scheme)
	}
	return r, nil
}

// checkParams refuses a URL whose query does not parse, names a parameter
// twice (which one would win?), or, if known is not nil, names one not in
// known or gives one a value check refuses: every command sees the same
// URL, whether or not it uses the parameter (stat and get use none of a
// shm: URL's but dir=).
func (r *queueRef) checkParams(known []string, check func(key, value string) error) error {
	query, err := url.ParseQuery(r.u.RawQuery)
	if err != nil {
		return usage("%s: its parameters do not parse: %v", r, err)
	}
	keys := slices.Sorted(maps.Keys(query))
	for _, key := range keys {
		if known != nil && !slices.Contains(known, key) {
			return usage("unknown parameter %q in %s; a %s: URL takes %s", key, r, r.scheme, strings.Join(known, ", "))
		}
		if vals := query[key]; len(vals) > 1 {
			return usage("parameter %s= is given %d times in %s (%s); give it once", key, len(vals), r, strings.Join(vals, ", "))
		}
		if check != nil {
			if err := check(key, query.Get(key)); err != nil {
				return usage("parameter %s=%q in %s: %v", key, query.Get(key), r, err)
			}
		}
	}
	return nil
}

// shmWant says, for each parameter of a shm: URL whose value mpq.ParseURL
// refuses, what to give instead; a size's own error says it already.
var shmWant = map[string]string{
	"durable":        "want true or false",
	"lease":          "want a positive duration",
	"max-deliveries": "want a count, 0 for no limit",
}

// checkSHMParam checks the value of a shm: URL's parameter: it must parse
// as mpq.ParseURL reads it, and make sense as the option it sets.
func checkSHMParam(key, v string) error {
	if key == "capacity" || key == "max-message" {
		_, err := mpq.ParseSize(v) // its error says what a size looks like
		return err
	}
	_, o, err := mpq.ParseURL("shm:q?" + url.Values{key: {v}}.Encode())
	if err != nil {
		if want, ok := shmWant[key]; ok {
			return errors.New(want)
		}
		return err
	}
	switch {
	case key == "dir" && v == "":
		return errors.New("want a directory")
	case key == "dir" && looksLikeURL(o.Dir):
		return errors.New("a URL, not a directory")
	case o.Lease < 0 || o.MaxDeliveries < 0:
		return errors.New(shmWant[key])
	case key == "dead-letter" && v == "":
		return errors.New("want a queue name")
	}
	return nil
}

// invalid is the usage error for an invalid URL: err, naming the URL.
func (r *queueRef) invalid(err error) error {
	msg := r.scrub(err.Error())
	if !strings.Contains(msg, r.String()) {
		msg += " (in " + r.String() + ")"
	}
	return usage("%s", msg)
}

// String is how messages name the queue: its name, or its URL without the
// password.
func (r *queueRef) String() string {
	if r.u == nil {
		return r.name
	}
	return r.u.Redacted()
}

// cmdArg is the queue as the commands that messages suggest take it, with
// a leading space: " --dir DIR NAME", " NAME" or " URL".
func (r *queueRef) cmdArg() string {
	if r.u == nil {
		return r.e.dirArg() + " " + r.name
	}
	return " " + r.String()
}

// scrub removes the password of the URL from s, an error message that may
// quote the URL (natsq's errors do).
func (r *queueRef) scrub(s string) string {
	if r.u == nil || r.u.User == nil {
		return s
	}
	if _, ok := r.u.User.Password(); !ok {
		return s
	}
	hidden := url.UserPassword(r.u.User.Username(), "xxxxx").String() + "@"
	s = strings.ReplaceAll(s, r.u.User.String()+"@", hidden)
	return mpq.RedactURL(s)
}

// openURL is the URL to open: the one given, with dir= set for a shm: URL
// that has none and the params not already in it added.
func (r *queueRef) openURL(params map[string]string) string {
	u := *r.u
	q := u.Query()
	if r.scheme == "shm" {
		params = map[string]string{"dir": r.dir}
	}
	for k, v := range params {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// openWithin is open, waiting at most timeout (if not 0) for the queue to
// open: a process stopped while it holds a queue's open lock makes a put
// or get with --timeout fail with exit status 4, not hang.
func (r *queueRef) openWithin(ctx context.Context, timeout time.Duration, create bool, params map[string]string) (mpq.MessageQueue, error) {
	if timeout <= 0 {
		return r.open(ctx, create, params)
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q, err := r.open(octx, create, params)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, fail(exitTimeout, "queue %s did not open within %v: another process holds its open lock (one stopped, or recovering or removing the queue; mpq stat %s lists its processes)", r, timeout, r)
	}
	return q, err
}

// open opens the queue. A plain name and, unless create, a URL's queue
// must exist: get, stat and seal do not create queues, where put on a URL
// does, as mpq.OpenURL does. params add to a nats:// URL's parameters
// (those the URL has win).
func (r *queueRef) open(ctx context.Context, create bool, params map[string]string) (mpq.MessageQueue, error) {
	if r.u == nil {
		q, err := r.e.open(ctx, r.name)
		if err != nil {
			return nil, err
		}
		return q, nil
	}
	switch r.scheme {
	case "shm":
		if !create {
			if _, err := mpq.Inspect(r.name, &mpq.Options{Dir: r.dir}); errors.Is(err, fs.ErrNotExist) {
				return nil, r.err(err)
			}
		}
	case "nats":
		if !create {
			params = mapWith(params, "no-create", "true")
		}
	}
	q, err := mpq.OpenURL(ctx, r.openURL(params))
	if err != nil {
		return nil, r.err(err)
	}
	return q, nil
}

// mapWith is m with k set to v, m left as it is.
func mapWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// err turns an error about the queue into one that says what happened to
// which queue and what to do about it, with its exit status, as
// [env.queueErr] does for names.
func (r *queueRef) err(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, mpq.ErrInvalidURL) {
		return r.invalid(err)
	}
	switch r.scheme {
	case "":
		return r.e.queueErr(r.name, err)
	case "shm":
		// The queue of a shm: URL is the queue of that name in its
		// directory: say what mpq says of it with --dir.
		e := *r.e
		e.dir = r.dir
		return e.queueErr(r.name, err)
	}
	msg := r.scrub(err.Error())
	var opErr *net.OpError
	switch {
	case errors.Is(err, nats.ErrNoServers) || errors.As(err, &opErr):
		return fail(exitFailure, "could not reach the NATS server at %s for queue %s (%s)", r.server, r, msg)
	case errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked):
		return fail(exitFailure, "the NATS server at %s refused the credentials for queue %s (%s)", r.server, r, msg)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrJetStreamNotEnabled):
		return fail(exitFailure, "the NATS server at %s has no JetStream, which queue %s needs (start it with -js)", r.server, r)
	case errors.Is(err, fs.ErrNotExist):
		return fail(exitMissing, "queue %s does not exist on the NATS server at %s; get, stat and seal do not create queues: a put creates it (mpq put %s MESSAGE)", r.name, r.server, r)
	case errors.Is(err, mpq.ErrSealed):
		return fail(exitSealed, "queue %s is sealed and takes no more messages", r)
	case errors.Is(err, mpq.ErrInvalidName), errors.Is(err, mpq.ErrInvalidOptions):
		return usage("queue %s: %s", r, msg)
	case errors.Is(err, mpq.ErrIncompatible):
		return fail(exitFailure, "queue %s is not a queue mpq can use (%s)", r, msg)
	}
	return &scrubbedError{msg: fmt.Sprintf("queue %s: %s", r, msg), err: err}
}

// A scrubbedError is err with a message that names no password; errors.Is
// still sees err (context.Canceled makes mpq's exit status 130).
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// maxMessage is the largest message q takes.
func (r *queueRef) maxMessage(ctx context.Context, q mpq.MessageQueue) int {
	switch q := q.(type) {
	case *mpq.Queue:
		return q.Stats().MaxMessage
	case *natsq.Queue:
		if st, err := q.Stats(ctx); err == nil && st.MaxMessage > 0 {
			return int(st.MaxMessage)
		}
	}
	return 1 << 20 // NATS's default max_payload
}

// largerHint says how to have a queue that takes larger messages.
func (r *queueRef) largerHint() string {
	if r.scheme == "nats" {
		return "a queue created with a larger max-message= in its URL takes it (up to the server's max_payload)"
	}
	return "create the queue with a larger --max-message"
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
