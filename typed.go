package mpq

import "context"

// A TypedQueue is a view of a [Queue] that carries values of type T, each
// encoded by a [Codec] into one message. Make one with [QueueOf].
//
// A TypedQueue holds no state of its own beyond its queue and codec: its
// methods are safe for concurrent use by multiple goroutines, as the
// Queue's are, and any number of views (and plain Puts and Gets) may share
// one queue, in this process or others, as long as they agree on the codec
// and type. It has no Close: close the Queue.
//
// Put encodes before it writes, and returns an encoding error (wrapping
// [ErrEncode]) at once, with nothing written. Get returns a message that
// does not decode as an error wrapping [ErrDecode]; that message is
// consumed, and the next Get returns the next one. The queue's own errors
// ([ErrFull], [ErrEmpty], [ErrSealed], [ErrTooLarge], [ErrClosed],
// ctx.Err(), io.EOF at the end of a sealed queue) come back unchanged.
type TypedQueue[T any] struct {
	q *Queue
	k coder[T]
}

// QueueOf returns a view of q that carries values of type T encoded with c. A
// nil c means [CBOR].
func QueueOf[T any](q *Queue, c Codec) *TypedQueue[T] {
	return &TypedQueue[T]{q: q, k: newCoder[T](c)}
}

// Queue returns the queue t is a view of.
func (t *TypedQueue[T]) Queue() *Queue { return t.q }

// Codec returns the codec t encodes and decodes with.
func (t *TypedQueue[T]) Codec() Codec { return t.k.c }

// Put encodes v and appends it to the queue as one message, waiting while
// the queue is full. If v cannot be encoded, Put returns an error wrapping
// [ErrEncode] and writes nothing; otherwise it returns what [Queue.Put]
// returns.
func (t *TypedQueue[T]) Put(ctx context.Context, v T) error {
	if ctx == nil {
		return ErrNilContext
	}
	msg, b, err := t.k.encode(v)
	if err != nil {
		return err
	}
	err = t.q.Put(ctx, msg)
	release(b)
	return err
}

// TryPut is Put without waiting: it returns [ErrFull] if the queue has no
// room for the message now.
func (t *TypedQueue[T]) TryPut(v T) error {
	msg, b, err := t.k.encode(v)
	if err != nil {
		return err
	}
	err = t.q.TryPut(msg)
	release(b)
	return err
}

// Get removes the oldest message from the queue and returns it decoded,
// waiting while the queue is empty. A message that cannot be decoded into a
// T is consumed all the same, and Get returns the zero T and an error
// wrapping [ErrDecode]. Once the queue is sealed and empty Get returns
// io.EOF; if ctx is done first, ctx.Err().
func (t *TypedQueue[T]) Get(ctx context.Context) (T, error) {
	if !t.k.reuse {
		msg, err := t.q.Get(ctx)
		return t.k.decode(msg, err)
	}
	b := getDecBuffer()
	msg, err := t.q.AppendGet(ctx, (*b)[:0])
	v, err := t.k.decode(msg, err)
	*b = msg
	putDecBuffer(b)
	return v, err
}

// TryGet is Get without waiting: it returns [ErrEmpty] if no message is
// waiting now.
func (t *TypedQueue[T]) TryGet() (T, error) {
	if !t.k.reuse {
		msg, err := t.q.TryGet()
		return t.k.decode(msg, err)
	}
	b := getDecBuffer()
	msg, err := t.q.TryAppendGet((*b)[:0])
	v, err := t.k.decode(msg, err)
	*b = msg
	putDecBuffer(b)
	return v, err
}

// A TypedConn is a view of a [Conn] that carries values of type T, each
// encoded by a [Codec] into one message. Make one with [ConnOf].
//
// Its methods are safe for concurrent use by multiple goroutines, as the
// Conn's are. It has no Close: close the Conn. Errors are as for
// [TypedQueue]: an encoding error wraps [ErrEncode] and sends nothing, a
// message that does not decode is consumed and reported with an error
// wrapping [ErrDecode], and the Conn's own errors (io.EOF included) come
// back unchanged.
type TypedConn[T any] struct {
	c *Conn
	k coder[T]
}

// ConnOf returns a view of c that carries values of type T encoded with
// codec. A nil codec means [CBOR].
func ConnOf[T any](c *Conn, codec Codec) *TypedConn[T] {
	return &TypedConn[T]{c: c, k: newCoder[T](codec)}
}

// Conn returns the connection t is a view of.
func (t *TypedConn[T]) Conn() *Conn { return t.c }

// Codec returns the codec t encodes and decodes with.
func (t *TypedConn[T]) Codec() Codec { return t.k.c }

// Send encodes v and sends it to the other end as one message, waiting
// while the connection is full. If v cannot be encoded, Send returns an
// error wrapping [ErrEncode] and sends nothing; otherwise it returns what
// [Conn.Send] returns.
func (t *TypedConn[T]) Send(ctx context.Context, v T) error {
	if ctx == nil {
		return ErrNilContext
	}
	msg, b, err := t.k.encode(v)
	if err != nil {
		return err
	}
	err = t.c.Send(ctx, msg)
	release(b)
	return err
}

// TrySend is Send without waiting, as [Conn.TrySend].
func (t *TypedConn[T]) TrySend(v T) error {
	msg, b, err := t.k.encode(v)
	if err != nil {
		return err
	}
	err = t.c.TrySend(msg)
	release(b)
	return err
}

// Recv returns the next message from the other end decoded, waiting until
// one arrives. A message that cannot be decoded into a T is consumed all
// the same, and Recv returns the zero T and an error wrapping [ErrDecode].
// Otherwise it returns what [Conn.Recv] returns: io.EOF once the other end
// is gone and everything it sent has been received.
func (t *TypedConn[T]) Recv(ctx context.Context) (T, error) {
	msg, err := t.c.Recv(ctx)
	return t.k.decode(msg, err)
}

// TryRecv is Recv without waiting: it returns [ErrEmpty] if no whole
// message has arrived.
func (t *TypedConn[T]) TryRecv() (T, error) {
	msg, err := t.c.TryRecv()
	return t.k.decode(msg, err)
}

// A coder encodes and decodes the values of a typed view.
type coder[T any] struct {
	c     Codec
	bc    bufferedCodec // c, if it is a built-in codec; else nil
	raw   bool          // c is Raw
	reuse bool          // c's Unmarshal copies: decode from a reused buffer
}

func newCoder[T any](c Codec) coder[T] {
	if c == nil {
		c = CBOR
	}
	k := coder[T]{c: c}
	if bc, ok := c.(bufferedCodec); ok {
		k.bc = bc
		k.reuse = bc.copies()
	}
	_, k.raw = c.(rawCodec)
	return k
}

// encode returns the message of v, and the buffer that holds it (to release
// once the message is written) or nil.
func (k *coder[T]) encode(v T) ([]byte, *encBuffer, error) {
	if k.raw {
		if msg, b, ok := rawEncode(v); ok {
			return msg, b, nil
		}
	}
	if k.bc == nil {
		msg, err := k.c.Marshal(v)
		if err != nil {
			return nil, nil, codecError(ErrEncode, k.c, err)
		}
		return msg, nil, nil
	}
	b := getEncBuffer()
	msg, err := k.bc.marshalTo(b, v)
	if err != nil {
		putEncBuffer(b)
		return nil, nil, err
	}
	return msg, b, nil
}

// decode returns the value of msg, received with error err. Errors of the
// queue or connection pass unchanged.
func (k *coder[T]) decode(msg []byte, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	if k.raw {
		if v, ok := rawDecode[T](msg); ok {
			return v, nil
		}
	}
	return k.unmarshal(msg)
}

func (k *coder[T]) unmarshal(msg []byte) (T, error) {
	var v T
	if err := k.c.Unmarshal(msg, &v); err != nil {
		var zero T
		return zero, codecError(ErrDecode, k.c, err)
	}
	return v, nil
}

// rawEncode is Raw's Marshal for the common types, without boxing v.
func rawEncode[T any](v T) ([]byte, *encBuffer, bool) {
	switch x := any(v).(type) {
	case []byte:
		return x, nil, true
	case string:
		b := getEncBuffer()
		b.WriteString(x)
		return b.Bytes(), b, true
	}
	return nil, nil, false
}

// rawDecode is Raw's Unmarshal for the common types, without boxing a
// pointer to the result (which would move it to the heap).
func rawDecode[T any](msg []byte) (T, bool) {
	var v T
	switch p := any(&v).(type) {
	case *[]byte:
		*p = msg
		return v, true
	case *string:
		*p = string(msg)
		return v, true
	}
	return v, false
}

// release returns an encoding buffer, if any, for reuse.
func release(b *encBuffer) {
	if b != nil {
		putEncBuffer(b)
	}
}
