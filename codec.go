package mpq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/mpq-go/mpq/internal/cborx"
)

// Errors of the typed views ([TypedQueue], [TypedConn]) and of the built-in
// codecs. Both are wrapped with the codec's name and the codec's own error.
var (
	// ErrEncode is returned by a typed Put or Send when the value cannot be
	// encoded. Nothing is written.
	ErrEncode = errors.New("mpq: cannot encode message")
	// ErrDecode is returned by a typed Get or Recv when a message cannot be
	// decoded into the view's type. The message is consumed: the next Get
	// or Recv returns the next one.
	ErrDecode = errors.New("mpq: cannot decode message")
)

// A Codec turns values into message bytes and back. The typed views
// [TypedQueue] and [TypedConn] use one to carry values of a Go type over a
// [Queue] or a [Conn]. A Codec must be safe for concurrent use.
//
// The built-in codecs are [CBOR] (the default), [JSON] and [Raw]. Their
// errors wrap [ErrEncode] or [ErrDecode] and name the codec; the typed views
// wrap those of other codecs likewise.
type Codec interface {
	// Name names the codec in error messages: "cbor", "json", "raw".
	Name() string
	// Marshal returns the encoding of v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to. v is a non-nil
	// pointer. The typed views hand Unmarshal a slice that nothing else
	// uses: it may keep it.
	Unmarshal(data []byte, v any) error
}

// The built-in codecs.
var (
	// CBOR encodes values as CBOR (RFC 8949) with
	// github.com/fxamacker/cbor/v2: compact, fast, and the default of the
	// typed views. Struct fields are encoded as maps keyed by field name
	// (or by their `cbor` or `json` tag), as encoding/json does; a
	// time.Time is encoded as an RFC 3339 text string with nanoseconds
	// (tag 0), so that its instant survives the trip exactly; its location
	// comes back as UTC or a fixed offset. As with JSON, a time outside the
	// years 0 to 9999 cannot be encoded.
	//
	// Messages come from other processes, so decoding is bounded:
	//
	//   - nesting of arrays, maps and tags: at most 32 levels;
	//   - an array: at most 131072 elements; a map: at most 131072 pairs
	//     (a []byte or a string is a byte or text string, not an array,
	//     and is bounded only by the message size);
	//   - a map with a duplicate key is refused, as is a text string that
	//     is not valid UTF-8;
	//   - a message is exactly one data item: trailing bytes are refused;
	//   - the whole message is checked to be well-formed before anything is
	//     allocated, so a header that declares more elements or bytes than
	//     the message holds fails at once. What decoding allocates is
	//     therefore bounded by the message size times the size of the Go
	//     values its elements become.
	//
	// Unknown map keys are ignored, as in encoding/json. Unlike
	// encoding/json, the encoder does not detect cyclic values: encoding
	// one overflows the stack.
	CBOR Codec = cborCodec{}

	// JSON encodes values with encoding/json (Marshal and Unmarshal), for
	// peers in other languages or for messages that people read. A []byte
	// is base64 text; NaN and infinite floats cannot be encoded. The
	// decoder allows nesting up to 10000 levels, and a duplicate object key
	// overwrites the earlier one, as encoding/json does.
	JSON Codec = jsonCodec{}

	// Raw sends bytes as they are: it works for types whose kind is a
	// slice of bytes or a string, named ones included, and refuses any
	// other type with an error wrapping ErrEncode or ErrDecode. It never
	// copies a []byte: Marshal returns the slice it is given, and Unmarshal
	// into a []byte keeps data itself.
	Raw Codec = rawCodec{}
)

// cborEnc and cborDec are the modes of CBOR: see its documentation.
var (
	cborEnc = cborx.Enc
	cborDec = cborx.Untrusted
)

// codecError wraps err, returned by codec c, in sentinel (ErrEncode or
// ErrDecode). It leaves an error that wraps sentinel already as it is. A
// codec error that would pass for one that ends or steers a receive loop
// (io.EOF, ErrEmpty, a context's error...) is kept as text only, so that
// errors.Is(err, io.EOF) means the end of the stream and nothing else.
func codecError(sentinel error, c Codec, err error) error {
	if errors.Is(err, sentinel) {
		return err
	}
	if controlError(err) {
		return fmt.Errorf("%w: codec %s: %v", sentinel, c.Name(), err)
	}
	return fmt.Errorf("%w: codec %s: %w", sentinel, c.Name(), err)
}

// controlError reports whether err is, or wraps, an error that callers
// test for to decide what to do next with a queue.
func controlError(err error) bool {
	for _, e := range []error{io.EOF, ErrEmpty, ErrFull, ErrSealed, ErrClosed, ErrTooLarge,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// A bufferedCodec is a built-in codec that can encode into a reused buffer.
type bufferedCodec interface {
	Codec
	// marshalTo returns the encoding of v, which may be in b's buffer.
	marshalTo(b *encBuffer, v any) ([]byte, error)
	// copies reports whether Unmarshal copies what it keeps of data, so
	// that data may be reused once it returns.
	copies() bool
}

// An encBuffer is a reusable encoding buffer.
type encBuffer struct {
	bytes.Buffer
	json *json.Encoder // writes to Buffer; made on first use
}

// maxPooled is the largest buffer capacity kept for reuse: larger ones are
// left to the garbage collector rather than pinned in a pool.
const maxPooled = 64 << 10

var (
	encPool = sync.Pool{New: func() any { return new(encBuffer) }}
	decPool = sync.Pool{New: func() any { return new([]byte) }}
)

func getEncBuffer() *encBuffer { return encPool.Get().(*encBuffer) }

func putEncBuffer(b *encBuffer) {
	if b.Cap() <= maxPooled {
		b.Reset()
		encPool.Put(b)
	}
}

func getDecBuffer() *[]byte { return decPool.Get().(*[]byte) }

func putDecBuffer(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		decPool.Put(b)
	}
}

type cborCodec struct{}

func (cborCodec) Name() string { return "cbor" }

func (c cborCodec) Marshal(v any) ([]byte, error) {
	b, err := cborEnc.Marshal(v)
	if err != nil {
		return nil, codecError(ErrEncode, c, err)
	}
	return b, nil
}

func (c cborCodec) marshalTo(b *encBuffer, v any) ([]byte, error) {
	b.Reset()
	if err := cborEnc.MarshalToBuffer(v, &b.Buffer); err != nil {
		return nil, codecError(ErrEncode, c, err)
	}
	return b.Bytes(), nil
}

func (c cborCodec) Unmarshal(data []byte, v any) error {
	if err := cborDec.Unmarshal(data, v); err != nil {
		if len(data) == 0 {
			err = errors.New("cbor: empty message") // rather than io.EOF
		}
		return codecError(ErrDecode, c, err)
	}
	return nil
}

func (cborCodec) copies() bool { return true }

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

func (c jsonCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, codecError(ErrEncode, c, err)
	}
	return b, nil
}

func (c jsonCodec) marshalTo(b *encBuffer, v any) ([]byte, error) {
	b.Reset()
	if b.json == nil {
		b.json = json.NewEncoder(&b.Buffer)
	}
	if err := b.json.Encode(v); err != nil {
		return nil, codecError(ErrEncode, c, err)
	}
	// Encode writes what Marshal returns, and a newline.
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

func (c jsonCodec) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return codecError(ErrDecode, c, err)
	}
	return nil
}

func (jsonCodec) copies() bool { return true }

type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (c rawCodec) Marshal(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	rv := reflect.ValueOf(v)
	switch {
	case !rv.IsValid():
		return nil, fmt.Errorf("%w: codec raw: nil is neither a byte slice nor a string", ErrEncode)
	case isBytes(rv.Type()):
		return rv.Bytes(), nil
	case rv.Kind() == reflect.String:
		return []byte(rv.String()), nil
	}
	return nil, rawTypeError(ErrEncode, rv.Type())
}

func (c rawCodec) marshalTo(b *encBuffer, v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		b.Reset()
		b.WriteString(x)
		return b.Bytes(), nil
	}
	return c.Marshal(v)
}

func (c rawCodec) Unmarshal(data []byte, v any) error {
	switch p := v.(type) {
	case *[]byte:
		*p = data
		return nil
	case *string:
		*p = string(data)
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: codec raw: Unmarshal needs a non-nil pointer, not %T", ErrDecode, v)
	}
	e := rv.Elem()
	switch {
	case isBytes(e.Type()):
		e.SetBytes(data)
	case e.Kind() == reflect.String:
		e.SetString(string(data))
	default:
		return rawTypeError(ErrDecode, e.Type())
	}
	return nil
}

func (rawCodec) copies() bool { return false }

// isBytes reports whether t's kind is a slice of bytes.
func isBytes(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

func rawTypeError(sentinel error, t reflect.Type) error {
	return fmt.Errorf("%w: codec raw: %v is neither a byte slice nor a string", sentinel, t)
}
