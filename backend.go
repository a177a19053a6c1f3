package mpq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// A MessageQueue is what a program needs of a queue whatever holds it:
// [*Queue] in shared memory, or a queue of another backend opened with
// [OpenURL] (package natsq puts the same calls on NATS JetStream). The methods
// mean what they mean on [Queue]: Put waits for room and TryPut returns
// [ErrFull]; Get and Receive wait for a message and TryGet and TryReceive
// return [ErrEmpty]; after Seal every Put returns [ErrSealed] and consumers
// receive what is left, then io.EOF; Close releases the handle, after which
// every method returns [ErrClosed].
type MessageQueue interface {
	Put(ctx context.Context, msg []byte) error
	TryPut(msg []byte) error
	Get(ctx context.Context) ([]byte, error)
	TryGet() ([]byte, error)
	Receive(ctx context.Context) (*Delivery, error)
	TryReceive() (*Delivery, error)
	// Len is the number of messages waiting to be delivered.
	Len() int
	Seal() error
	Close() error
}

var _ MessageQueue = (*Queue)(nil)

// ErrInvalidURL is returned by [OpenURL] for a URL it cannot parse, one
// with a scheme no backend registered, or one with an unknown or invalid
// parameter.
var ErrInvalidURL = errors.New("mpq: invalid queue URL")

// An Opener opens the queue a URL names, for [RegisterScheme].
type Opener func(ctx context.Context, u *url.URL) (MessageQueue, error)

var schemes = struct {
	sync.RWMutex
	m map[string]Opener
}{m: map[string]Opener{"shm": openSHM}}

// RegisterScheme makes [OpenURL] open URLs of scheme with open. A backend
// registers itself when its package is imported, as database/sql drivers
// do: package natsq registers "nats". It panics if the scheme is already
// registered or open is nil.
func RegisterScheme(scheme string, open Opener) {
	schemes.Lock()
	defer schemes.Unlock()
	scheme = strings.ToLower(scheme)
	if open == nil {
		panic("mpq: RegisterScheme " + scheme + " with a nil Opener")
	}
	if _, dup := schemes.m[scheme]; dup {
		panic("mpq: RegisterScheme called twice for scheme " + scheme)
	}
	schemes.m[scheme] = open
}

// Schemes returns the URL schemes [OpenURL] knows, sorted.
func Schemes() []string {
	schemes.RLock()
	defer schemes.RUnlock()
	var s []string
	for k := range schemes.m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// OpenURL opens the queue rawURL names, so that one program can move between
// backends by configuration:
//
//	shm:jobs                          the named queue jobs in DefaultDir, as Open("jobs", nil)
//	shm:jobs?dir=/var/lib/app&durable=true
//	nats://127.0.0.1:4222/jobs        a JetStream queue (import _ "github.com/mpq-go/mpq/natsq")
//
// A shm: URL takes the parameters dir, durable (true or false), capacity
// and max-message (bytes, or with a KiB, MiB or GiB suffix), lease (a
// duration such as 30s), max-deliveries and dead-letter; each sets the
// [Options] field of that name (max-message sets MaxMessage), and a
// queue that exists keeps its own geometry. Other schemes document their own parameters. An unknown
// parameter, a bad value or a scheme no backend registered returns an error
// wrapping [ErrInvalidURL].
func OpenURL(ctx context.Context, rawURL string) (MessageQueue, error) {
	if ctx == nil {
		return nil, ErrNilContext
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidURL, RedactURL(rawURL), urlParseError(err))
	}
	scheme := strings.ToLower(u.Scheme)
	schemes.RLock()
	open := schemes.m[scheme]
	schemes.RUnlock()
	if open == nil {
		hint := ""
		if scheme == "nats" {
			hint = " (import _ \"github.com/mpq-go/mpq/natsq\" to register it)"
		}
		if scheme == "" {
			return nil, fmt.Errorf("%w: %q has no scheme; want shm:NAME or nats://HOST:PORT/NAME", ErrInvalidURL, RedactURL(rawURL))
		}
		return nil, fmt.Errorf("%w: no backend for scheme %q%s; known: %s", ErrInvalidURL, u.Scheme, hint, strings.Join(Schemes(), ", "))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return open(ctx, u)
}
