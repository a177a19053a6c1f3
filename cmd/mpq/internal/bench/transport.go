//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// A transport is an inter-process mechanism measured by [procBackend]: the
// parent makes a link, hands each side's files to child processes, and
// each process opens its side with open.
type transport interface {
	// link makes a new link between sides a and b: from a to b, and with
	// duplex also back (a transport may make both ways regardless).
	link(duplex bool) (*link, error)
	// open opens one side from its files, inherited or the parent's own.
	open(files []*os.File) (*ends, error)
}

// A link connects side a to side b, and back if it is duplex. Side a
// writes what side b reads: producers (and the pinging parent) take side a, consumers
// (and the echoing child) side b. A side's list may hold nil entries: the
// child gets those descriptors closed, and its side's list the nil.
type link struct {
	a, b  []*os.File
	files []*os.File // every file of a and b once, for close
	dir   string     // if set, a directory of the link's, removed by close
}

// close closes the parent's copies of the link's files and removes its
// directory, once.
func (l *link) close() error {
	var errs []error
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	if l.dir != "" {
		errs = append(errs, os.RemoveAll(l.dir))
	}
	l.files, l.dir = nil, ""
	return errors.Join(errs...)
}

// An ownedTransport is a transport whose ends belong to one process at a
// time, like Python's Pipe: a reader sees the end of the stream only once
// every copy of the writing end, in any process, is closed. So the parent
// closes its copies of the link's files as soon as the children have
// theirs, a child closes its inherited files once its side is open, and a
// producer ends the stream itself by closing its end when done. Such a
// transport takes one producer and one consumer.
type ownedTransport interface {
	transport
	ownedEnds()
}

// isOwned reports whether t is an [ownedTransport].
func isOwned(t transport) bool {
	_, ok := t.(ownedTransport)
	return ok
}

// An endpoint sends or receives messages in one process.
type endpoint interface {
	// put sends n copies of msg, waiting for room.
	put(ctx context.Context, msg []byte, n int) error
	// get receives one or more messages and returns how many and their
	// total payload bytes. It returns io.EOF once the writing side has
	// called closeWrite and everything sent before has been received.
	get(ctx context.Context) (msgs, bytes int, err error)
	// closeWrite ends the stream: the readers drain it and see io.EOF.
	closeWrite() error
}

// A sleepCounter is an endpoint that counts how often its users slept
// waiting for messages or room (mpq's Stats.Waits).
type sleepCounter interface {
	sleeps() uint64
}

// sleeps returns the sleeps counted by the ends' endpoints, and whether
// they count them.
func (e *ends) sleeps() (uint64, bool) {
	in, ok1 := e.in.(sleepCounter)
	out, ok2 := e.out.(sleepCounter)
	if !ok1 || !ok2 {
		return 0, false
	}
	if e.in == e.out {
		return in.sleeps(), true
	}
	return in.sleeps() + out.sleeps(), true
}

// ends is one side of a link: it reads from in and writes to out, which may
// be the same object.
type ends struct {
	in, out endpoint
	close   func() error
}

// transports maps the names children are given to the transports.
var transports = map[string]transport{
	"mpq":       mpqTransport{},
	"mpq-batch": mpqTransport{batch: true},
	"mpq-ack":   mpqTransport{ack: true},
	// Durable queues by Sync: every Put, every 10 ms, never.
	"mpq-durable-put":   durableTransport{},
	"mpq-durable-10ms":  durableTransport{every: 10 * time.Millisecond},
	"mpq-durable-never": durableTransport{every: -1},
	"socket":            socketTransport{},
	"mpq-pipe":          pipeTransport{},
	// AppendRecv instead of Recv.
	"mpq-pipe-append": pipeTransport{appendRecv: true},
}

// transportName returns the name of t in transports.
func transportName(t transport) (string, error) {
	for name, u := range transports {
		if u == t {
			return name, nil
		}
	}
	return "", fmt.Errorf("transport %T not registered", t)
}

// isDurable reports whether t is a durable queue's.
func isDurable(t transport) bool {
	_, ok := t.(durableTransport)
	return ok
}
