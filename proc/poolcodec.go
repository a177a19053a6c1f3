package proc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/fxamacker/cbor/v2"

	"github.com/mpq-go/mpq"
)

// A sliceCodec encodes the inputs of a chunk, or the outputs of a report.
// Values of a plain fixed-size type (a number, a bool, an array of them)
// travel as their bytes in memory, which the pool and its workers, the same
// program on the same machine, lay out alike; others as a CBOR array.
type sliceCodec[T any] struct {
	raw  bool
	size int
}

// codecOf returns the codec of T.
func codecOf[T any]() sliceCodec[T] {
	t := reflect.TypeFor[T]()
	return sliceCodec[T]{raw: flat(t), size: int(t.Size())}
}

// flat reports whether a value of type t is all its bytes: no pointer,
// no padding, no field that would not travel as CBOR.
func flat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return flat(t.Elem())
	}
	return false
}

// encode appends the encoding of vs to b.
func (c sliceCodec[T]) encode(b *bytes.Buffer, vs []T) error {
	if c.raw {
		if len(vs) > 0 {
			b.Write(unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), len(vs)*c.size))
		}
		return nil
	}
	return encMode.NewEncoder(b).Encode(vs)
}

// decode decodes n values from data.
func (c sliceCodec[T]) decode(data []byte, n int) ([]T, error) {
	if c.raw {
		if len(data) != n*c.size {
			return nil, fmt.Errorf("%d bytes for %d values of %d bytes", len(data), n, c.size)
		}
		vs := make([]T, n)
		if n > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), n*c.size), data)
		}
		return vs, nil
	}
	var vs []T
	if err := decMode.Unmarshal(data, &vs); err != nil {
		return nil, err
	}
	if len(vs) != n {
		return nil, fmt.Errorf("%d values; want %d", len(vs), n)
	}
	return vs, nil
}

// decodeEach decodes n CBOR values from data one by one, for a chunk that
// did not decode as a whole, and returns the failures of those that do not
// decode (zero in their place), which must not run.
func (c sliceCodec[T]) decodeEach(data []byte, n int) ([]T, []wireFail, error) {
	var raws []cbor.RawMessage
	if c.raw {
		return nil, nil, errors.New("fixed-size values do not fail one by one")
	}
	if err := decMode.Unmarshal(data, &raws); err != nil {
		return nil, nil, err
	}
	if len(raws) != n {
		return nil, nil, fmt.Errorf("%d values; want %d", len(raws), n)
	}
	vs := make([]T, n)
	var fails []wireFail
	for i, r := range raws {
		if err := decMode.Unmarshal(r, &vs[i]); err != nil {
			var zero T
			vs[i] = zero
			why := fmt.Errorf("%w: its input: %v", mpq.ErrDecode, err)
			fails = append(fails, wireFail{Pos: uint32(i), Message: why.Error(), Is: matches(why)})
		}
	}
	return vs, fails, nil
}

// A report of results is its header, then the length of the outputs'
// encoding (uint32), the outputs, and the failures (CBOR, if any).

// encodeResults appends the body of a report of outs and fails to b.
func encodeResults[Out any](c sliceCodec[Out], b *bytes.Buffer, outs []Out, fails []wireFail) error {
	at := b.Len()
	b.Write([]byte{0, 0, 0, 0})
	if err := c.encode(b, outs); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b.Bytes()[at:], uint32(b.Len()-at-4))
	if len(fails) > 0 {
		return encMode.NewEncoder(b).Encode(fails)
	}
	return nil
}

// decodeResults decodes the body of a report of n results.
func decodeResults[Out any](c sliceCodec[Out], body []byte, n int) ([]Out, []wireFail, error) {
	if len(body) < 4 {
		return nil, nil, errShortMessage
	}
	l := int(binary.LittleEndian.Uint32(body))
	if l > len(body)-4 {
		return nil, nil, fmt.Errorf("outputs of %d bytes in a report of %d", l, len(body))
	}
	outs, err := c.decode(body[4:4+l], n)
	if err != nil {
		return nil, nil, err
	}
	var fails []wireFail
	if rest := body[4+l:]; len(rest) > 0 {
		if err := decMode.Unmarshal(rest, &fails); err != nil {
			return nil, nil, err
		}
	}
	return outs, fails, nil
}
