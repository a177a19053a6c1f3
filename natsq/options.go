package natsq

import (
	"fmt"
	"time"

	"github.com/mpq-go/mpq"
)

// Options configure how a queue is opened or created. A nil *Options means
// all defaults. MaxMsgs, MaxBytes, MaxMessage, Memory, Replicas,
// AckWait, MaxDeliveries and DeadLetter apply only when the queue's stream
// and consumer are created: an existing queue keeps its own (MaxDeliveries
// and DeadLetter are recorded in the consumer's metadata). The others apply
// to the handle.
type Options struct {
	// MaxMsgs bounds how many messages the queue holds; Put waits and
	// TryPut returns mpq.ErrFull beyond it. Default: no bound on the count.
	MaxMsgs int64
	// MaxBytes bounds the bytes the queue holds (JetStream counts each
	// message's subject and headers too). Default 64 MiB.
	MaxBytes int64
	// MaxMessage is the largest message Put accepts; a larger one gets
	// mpq.ErrTooLarge. Default 1 MiB, the server's default max_payload.
	MaxMessage int32
	// Memory keeps the stream in the server's memory instead of files. A
	// restart of the server loses it. Default false: file storage.
	Memory bool
	// Replicas is the stream's number of replicas in a cluster. Default 1.
	Replicas int
	// AckWait is the lease of a delivery: how long a received message stays
	// with its consumer before it is delivered again. Default 30s.
	AckWait time.Duration
	// MaxDeliveries, if positive, is how many deliveries a message gets;
	// given back once more (or its lease ending), it goes to DeadLetter, or
	// is dropped if there is none. Default 0: no limit.
	MaxDeliveries int
	// DeadLetter names a queue on the same server that takes the messages
	// MaxDeliveries gives up on. It is opened, with default options, when
	// first needed. A message it does not take (full, unreachable) is tried
	// again 100ms later.
	DeadLetter string
	// NoCreate makes Open fail, with an error wrapping fs.ErrNotExist,
	// if the queue's stream does not exist.
	NoCreate bool
	// Prefetch is how many messages a Get asks the server for at once; the
	// handle keeps the rest for its next calls. Default 64. Receive asks
	// for one at a time, so that work spreads over the consumers and each
	// lease starts as its message is handed out. A
	// queue with MaxDeliveries fetches one at a time whatever this says,
	// since JetStream counts every message fetched as a delivery.
	Prefetch int
	// Poll is how often a blocked call asks the server again. Default 250ms.
	Poll time.Duration
	// Timeout bounds each request to the server by calls without a
	// context (TryPut, TryGet, TryReceive, Len, Seal, Close). Default 5s.
	Timeout time.Duration
}

const (
	defaultMaxBytes       = 64 << 20
	defaultMaxMessageSize = 1 << 20
	defaultAckWait        = 30 * time.Second
	defaultPrefetch       = 64
	defaultPoll           = 250 * time.Millisecond
	defaultTimeout        = 5 * time.Second
)

// withDefaults checks o and returns a copy with every zero field set to its
// default.
func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	switch {
	case r.MaxMsgs < 0, r.MaxBytes < 0, r.MaxMessage < 0, r.Replicas < 0, r.AckWait < 0,
		r.MaxDeliveries < 0, r.Prefetch < 0, r.Poll < 0, r.Timeout < 0:
		return r, fmt.Errorf("%w: negative value in %+v", mpq.ErrInvalidOptions, r)
	case r.AckWait > 0 && r.AckWait < time.Millisecond:
		return r, fmt.Errorf("%w: AckWait %v is below JetStream's 1ms", mpq.ErrInvalidOptions, r.AckWait)
	case r.AckWait > mpq.MaxLease:
		return r, fmt.Errorf("%w: AckWait %v over mpq.MaxLease %v", mpq.ErrInvalidOptions, r.AckWait, mpq.MaxLease)
	case r.Prefetch > 10000:
		return r, fmt.Errorf("%w: Prefetch %d is above 10000", mpq.ErrInvalidOptions, r.Prefetch)
	}
	if r.DeadLetter != "" {
		if err := validName(r.DeadLetter); err != nil {
			return r, fmt.Errorf("%w: DeadLetter: %v", mpq.ErrInvalidOptions, err)
		}
	}
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.MaxBytes, defaultMaxBytes)
	if r.MaxMessage == 0 {
		r.MaxMessage = defaultMaxMessageSize
	}
	if r.Replicas == 0 {
		r.Replicas = 1
	}
	if r.AckWait == 0 {
		r.AckWait = defaultAckWait
	}
	if r.Prefetch == 0 {
		r.Prefetch = defaultPrefetch
	}
	if r.Poll == 0 {
		r.Poll = defaultPoll
	}
	if r.Timeout == 0 {
		r.Timeout = defaultTimeout
	}
	return r, nil
}

// validName checks a queue name: it is a stream name and part of a subject,
// so 1 to 200 of A-Z a-z 0-9 _ -.
func validName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: %q: want 1 to 200 characters", mpq.ErrInvalidName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: a NATS queue name has only letters, digits, '_' and '-'", mpq.ErrInvalidName, name)
		}
	}
	return nil
}
