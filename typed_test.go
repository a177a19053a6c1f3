package mpq_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mpq-go/mpq"
)

// typedQueue returns an anonymous queue closed when the test ends.
func typedQueue(t testing.TB, opts *mpq.Options) *mpq.Queue {
	t.Helper()
	if opts == nil {
		opts = &mpq.Options{Capacity: 64 << 10}
	}
	q, err := mpq.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// typedCtx returns a context that ends with the test or after 10 seconds.
func typedCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type typedPoint struct {
	X, Y int
}

type typedJob struct {
	ID      int               `json:"id" cbor:"id"`
	Name    string            `json:"name" cbor:"name"`
	Weight  float64           `json:"weight" cbor:"weight"`
	Urgent  bool              `json:"urgent" cbor:"urgent"`
	Payload []byte            `json:"payload" cbor:"payload"`
	Tags    []string          `json:"tags" cbor:"tags"`
	Limits  map[string]int    `json:"limits" cbor:"limits"`
	Origin  *typedPoint       `json:"origin" cbor:"origin"`
	Path    []typedPoint      `json:"path" cbor:"path"`
	Extra   map[string]string `json:"extra,omitempty" cbor:"extra,omitempty"`
}

type typedBlob []byte

type typedName string

var typedSample = typedJob{
	ID:      42,
	Name:    "resize ünïcode.png",
	Weight:  -2.5,
	Urgent:  true,
	Payload: []byte{0, 1, 2, 0xff},
	Tags:    []string{"a", "", "c"},
	Limits:  map[string]int{"cpu": 2, "mem": 1 << 30},
	Origin:  &typedPoint{X: -1, Y: 7},
	Path:    []typedPoint{{1, 2}, {3, 4}},
}

// roundTrip puts v through a view of q with codec c, then gets it back,
// once with Put and Get and once with TryPut and TryGet.
func roundTrip[T any](t *testing.T, q *mpq.Queue, c mpq.Codec, v T) {
	t.Helper()
	tq := mpq.QueueOf[T](q, c)
	ctx := typedCtx(t)
	if err := tq.Put(ctx, v); err != nil {
		t.Fatalf("Put(%v): %v", v, err)
	}
	got, err := tq.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("Get: got %#v; want %#v", got, v)
	}
	if err := tq.TryPut(v); err != nil {
		t.Fatalf("TryPut(%v): %v", v, err)
	}
	got, err = tq.TryGet()
	if err != nil {
		t.Fatalf("TryGet: %v", err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("TryGet: got %#v; want %#v", got, v)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("Len after round trips: got %d; want 0", n)
	}
}

func TestTypedRoundTrip(t *testing.T) {
	q := typedQueue(t, nil)
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			tests := []struct {
				name string
				run  func(t *testing.T)
			}{
				{"struct", func(t *testing.T) { roundTrip(t, q, c, typedSample) }},
				{"zero struct", func(t *testing.T) { roundTrip(t, q, c, typedJob{}) }},
				{"pointer", func(t *testing.T) { roundTrip(t, q, c, &typedPoint{3, 4}) }},
				{"map", func(t *testing.T) { roundTrip(t, q, c, map[string][]int{"a": {1, 2}, "b": nil, "c": {}}) }},
				{"empty map", func(t *testing.T) { roundTrip(t, q, c, map[string]int{}) }},
				{"slice", func(t *testing.T) { roundTrip(t, q, c, []typedPoint{{1, 2}, {-3, 4}}) }},
				{"ints", func(t *testing.T) { roundTrip(t, q, c, []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}) }},
				{"string", func(t *testing.T) { roundTrip(t, q, c, "hello, wörld") }},
				{"empty string", func(t *testing.T) { roundTrip(t, q, c, "") }},
				{"bytes", func(t *testing.T) { roundTrip(t, q, c, []byte("\x00binary\xff")) }},
				{"empty bytes", func(t *testing.T) { roundTrip(t, q, c, []byte{}) }},
				{"nil bytes", func(t *testing.T) { roundTrip(t, q, c, []byte(nil)) }},
				{"named bytes", func(t *testing.T) { roundTrip(t, q, c, typedBlob("blob")) }},
				{"float", func(t *testing.T) { roundTrip(t, q, c, math.Pi) }},
				{"bool", func(t *testing.T) { roundTrip(t, q, c, true) }},
				{"time", func(t *testing.T) {
					// Exact to the nanosecond, in UTC (DeepEqual compares locations).
					roundTrip(t, q, c, time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC))
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, tt.run)
			}
		})
	}
}

// A large value is encoded into a buffer that is not kept for reuse, and
// decoded from one that is not either: it must come through all the same.
func TestTypedRoundTripLarge(t *testing.T) {
	q := typedQueue(t, &mpq.Options{Capacity: 4 << 20})
	big := make([]int, 50000)
	for i := range big {
		big[i] = i * 7919
	}
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			roundTrip(t, q, c, big)
			roundTrip(t, q, c, strings.Repeat("x", 300<<10))
		})
	}
}

func TestTypedRaw(t *testing.T) {
	q := typedQueue(t, nil)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"bytes", func(t *testing.T) { roundTrip(t, q, mpq.Raw, []byte("\x00raw\xff")) }},
		{"empty bytes", func(t *testing.T) { roundTrip(t, q, mpq.Raw, []byte{}) }},
		{"string", func(t *testing.T) { roundTrip(t, q, mpq.Raw, "raw text") }},
		{"named bytes", func(t *testing.T) { roundTrip(t, q, mpq.Raw, typedBlob("blob")) }},
		{"named string", func(t *testing.T) { roundTrip(t, q, mpq.Raw, typedName("name")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}

	// The message is the bytes themselves, readable by a plain Get.
	ctx := typedCtx(t)
	if err := mpq.QueueOf[string](q, mpq.Raw).Put(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if msg, err := q.Get(ctx); err != nil || string(msg) != "plain" {
		t.Errorf("plain Get of a Raw string: got %q, %v; want %q, nil", msg, err, "plain")
	}
}

func TestTypedRawNoCopy(t *testing.T) {
	b := []byte("shared")
	msg, err := mpq.Raw.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if &msg[0] != &b[0] {
		t.Errorf("Raw.Marshal of a []byte copied it")
	}
	var got []byte
	if err := mpq.Raw.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if &got[0] != &b[0] {
		t.Errorf("Raw.Unmarshal into a []byte copied it")
	}

	// A Put and a Get of a []byte allocate only the message Get returns.
	q := typedQueue(t, nil)
	tq := mpq.QueueOf[[]byte](q, mpq.Raw)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if err := tq.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, err := tq.Get(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("allocations per Raw []byte Put and Get: got %v; want at most 1", allocs)
	}
}

func TestTypedRawRefusesOtherTypes(t *testing.T) {
	q := typedQueue(t, nil)
	tq := mpq.QueueOf[int](q, mpq.Raw)
	err := tq.Put(typedCtx(t), 7)
	if !errors.Is(err, mpq.ErrEncode) || !strings.Contains(err.Error(), "codec raw") || !strings.Contains(err.Error(), "int") {
		t.Errorf("Raw Put of an int: got %v; want ErrEncode naming the codec and the type", err)
	}
	if err := tq.TryPut(7); !errors.Is(err, mpq.ErrEncode) {
		t.Errorf("Raw TryPut of an int: got %v; want %v", err, mpq.ErrEncode)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after refused Puts: got %d; want 0", n)
	}
	if err := q.Put(typedCtx(t), []byte("7")); err != nil {
		t.Fatal(err)
	}
	v, err := tq.Get(typedCtx(t))
	if !errors.Is(err, mpq.ErrDecode) || !strings.Contains(err.Error(), "codec raw") || v != 0 {
		t.Errorf("Raw Get into an int: got %v, %v; want 0 and ErrDecode naming the codec", v, err)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("Len after a refused Get: got %d; want 0 (the message is consumed)", n)
	}

	// The codec itself, called directly.
	if _, err := mpq.Raw.Marshal(nil); !errors.Is(err, mpq.ErrEncode) {
		t.Errorf("Raw.Marshal(nil): got %v; want %v", err, mpq.ErrEncode)
	}
	if err := mpq.Raw.Unmarshal(nil, new(float64)); !errors.Is(err, mpq.ErrDecode) {
		t.Errorf("Raw.Unmarshal into *float64: got %v; want %v", err, mpq.ErrDecode)
	}
	var s string
	if err := mpq.Raw.Unmarshal([]byte("x"), s); !errors.Is(err, mpq.ErrDecode) {
		t.Errorf("Raw.Unmarshal into a string, not a pointer: got %v; want %v", err, mpq.ErrDecode)
	}
}

func TestTypedEncodeError(t *testing.T) {
	type withFunc struct{ F func() }
	tests := []struct {
		name  string
		codec mpq.Codec
		put   func(q *mpq.Queue, c mpq.Codec, try bool) error
	}{
		{"chan", mpq.CBOR, putOf(make(chan int))},
		{"func", mpq.CBOR, putOf(func() {})},
		{"struct with func", mpq.CBOR, putOf(withFunc{F: func() {}})},
		{"map of chans", mpq.CBOR, putOf(map[string]any{"c": make(chan int)})},
		{"chan", mpq.JSON, putOf(make(chan int))},
		{"func", mpq.JSON, putOf(func() {})},
		{"+Inf", mpq.JSON, putOf(math.Inf(1))},
		{"NaN in struct", mpq.JSON, putOf(typedJob{Weight: math.NaN()})},
		{"map with complex key", mpq.JSON, putOf(map[complex64]int{1: 1})},
		{"failing codec", failCodec{}, putOf(1)},
	}
	for _, tt := range tests {
		for _, try := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s/try=%v", tt.codec.Name(), tt.name, try), func(t *testing.T) {
				q := typedQueue(t, nil)
				err := tt.put(q, tt.codec, try)
				if !errors.Is(err, mpq.ErrEncode) {
					t.Fatalf("got %v; want an error wrapping %v", err, mpq.ErrEncode)
				}
				prefix := "mpq: cannot encode message: codec " + tt.codec.Name() + ": "
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("got %q; want it to start with %q", err, prefix)
				}
				if n := q.Len(); n != 0 {
					t.Errorf("Len after a failed Put: got %d; want 0", n)
				}
			})
		}
	}
}

// putOf returns a function that puts v through a view with the codec given.
func putOf[T any](v T) func(q *mpq.Queue, c mpq.Codec, try bool) error {
	return func(q *mpq.Queue, c mpq.Codec, try bool) error {
		tq := mpq.QueueOf[T](q, c)
		if try {
			return tq.TryPut(v)
		}
		return tq.Put(context.Background(), v)
	}
}

// failCodec fails everything, with errors that could be mistaken for a
// queue's own.
type failCodec struct{}

func (failCodec) Name() string                { return "fail" }
func (failCodec) Marshal(any) ([]byte, error) { return nil, errors.New("no encoding today") }
func (failCodec) Unmarshal([]byte, any) error { return io.EOF }

// decimalCodec is a user codec of ints as decimal text.
type decimalCodec struct{}

func (decimalCodec) Name() string { return "decimal" }

func (decimalCodec) Marshal(v any) ([]byte, error) {
	n, ok := v.(int)
	if !ok {
		return nil, fmt.Errorf("%T is not an int", v)
	}
	return strconv.AppendInt(nil, int64(n), 10), nil
}

func (decimalCodec) Unmarshal(data []byte, v any) error {
	n, err := strconv.Atoi(string(data))
	if err != nil {
		return err
	}
	*v.(*int) = n
	return nil
}

func TestTypedUserCodec(t *testing.T) {
	q := typedQueue(t, nil)
	roundTrip(t, q, decimalCodec{}, -12345)

	ctx := typedCtx(t)
	if err := q.Put(ctx, []byte("twelve")); err != nil {
		t.Fatal(err)
	}
	_, err := mpq.QueueOf[int](q, decimalCodec{}).Get(ctx)
	if !errors.Is(err, mpq.ErrDecode) || !strings.HasPrefix(err.Error(), "mpq: cannot decode message: codec decimal: ") {
		t.Errorf("Get of a bad message: got %v; want ErrDecode naming the codec", err)
	}
	var numErr *strconv.NumError
	if !errors.As(err, &numErr) {
		t.Errorf("Get of a bad message: got %v; want it to wrap the codec's *strconv.NumError", err)
	}

	// A codec's io.EOF must not read as the end of the queue.
	if err := q.Put(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = mpq.QueueOf[int](q, failCodec{}).Get(ctx)
	if !errors.Is(err, mpq.ErrDecode) || errors.Is(err, io.EOF) {
		t.Errorf("Get with a codec returning io.EOF: got %v; want ErrDecode, not io.EOF", err)
	}
}

func TestTypedDecodeErrorSkips(t *testing.T) {
	tests := []struct {
		codec   mpq.Codec
		garbage string
	}{
		{mpq.CBOR, ""},                         // no data item at all: must not read as io.EOF
		{mpq.CBOR, "\xff"},                     // a break outside any indefinite-length item
		{mpq.CBOR, "\xa1\x62id"},               // a map missing its value
		{mpq.CBOR, "\x01\x02"},                 // trailing data
		{mpq.CBOR, "\x63\xff\xfe\xfd"},         // text that is not UTF-8
		{mpq.CBOR, "\xa2\x62id\x01\x62id\x02"}, // duplicate key
		{mpq.CBOR, "\xa1\x62id\x63abc"},        // a string for an int
		{mpq.JSON, ""},
		{mpq.JSON, "{"},
		{mpq.JSON, `{"id": "seven"}`},
		{mpq.JSON, `{"id": 1} {"id": 2}`},
		{mpq.JSON, "\xff"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%q", tt.codec.Name(), tt.garbage), func(t *testing.T) {
			q := typedQueue(t, nil)
			tq := mpq.QueueOf[typedJob](q, tt.codec)
			ctx := typedCtx(t)
			for _, try := range []bool{false, true} {
				if err := q.Put(ctx, []byte(tt.garbage)); err != nil {
					t.Fatal(err)
				}
				if err := tq.Put(ctx, typedSample); err != nil {
					t.Fatal(err)
				}
				get := func() (typedJob, error) {
					if try {
						return tq.TryGet()
					}
					return tq.Get(ctx)
				}
				v, err := get()
				if !errors.Is(err, mpq.ErrDecode) || errors.Is(err, io.EOF) {
					t.Fatalf("Get of garbage (try=%v): got %v; want an error wrapping %v", try, err, mpq.ErrDecode)
				}
				prefix := "mpq: cannot decode message: codec " + tt.codec.Name() + ": "
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("got %q; want it to start with %q", err, prefix)
				}
				if !reflect.DeepEqual(v, typedJob{}) {
					t.Errorf("value with the error: got %+v; want the zero value", v)
				}
				v, err = get()
				if err != nil || !reflect.DeepEqual(v, typedSample) {
					t.Errorf("Get after garbage (try=%v): got %+v, %v; want %+v, nil", try, v, err, typedSample)
				}
			}
		})
	}
}

func TestTypedQueueErrorsPassThrough(t *testing.T) {
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON, mpq.Raw, decimalCodec{}} {
		t.Run(c.Name(), func(t *testing.T) {
			q := typedQueue(t, &mpq.Options{Capacity: 4096, MaxMessage: 512})
			tq := mpq.QueueOf[string](q, c)
			if c.Name() == "decimal" {
				// decimalCodec does ints only: check the queue's errors on the way out.
				passThroughInt(t, q)
				return
			}

			if _, err := tq.TryGet(); err != mpq.ErrEmpty {
				t.Errorf("TryGet on empty: got %v; want %v", err, mpq.ErrEmpty)
			}
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := tq.Get(canceled); err != context.Canceled {
				t.Errorf("Get with a canceled context: got %v; want %v", err, context.Canceled)
			}
			short, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			if _, err := tq.Get(short); err != context.DeadlineExceeded {
				t.Errorf("Get past the deadline: got %v; want %v", err, context.DeadlineExceeded)
			}
			if err := tq.Put(typedCtx(t), strings.Repeat("x", 600)); !errors.Is(err, mpq.ErrTooLarge) || errors.Is(err, mpq.ErrEncode) {
				t.Errorf("Put too large: got %v; want %v", err, mpq.ErrTooLarge)
			}
			if err := tq.TryPut(strings.Repeat("x", 600)); !errors.Is(err, mpq.ErrTooLarge) {
				t.Errorf("TryPut too large: got %v; want %v", err, mpq.ErrTooLarge)
			}
			var err error
			for range 100 {
				if err = tq.TryPut(strings.Repeat("y", 400)); err != nil {
					break
				}
			}
			if err != mpq.ErrFull {
				t.Errorf("TryPut on full: got %v; want %v", err, mpq.ErrFull)
			}
			if err := tq.Put(canceled, strings.Repeat("y", 400)); err != context.Canceled {
				t.Errorf("Put on full with a canceled context: got %v; want %v", err, context.Canceled)
			}
			for q.Len() > 0 {
				if _, err := tq.Get(typedCtx(t)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tq.Put(typedCtx(t), "last"); err != nil {
				t.Fatal(err)
			}
			if err := q.Seal(); err != nil {
				t.Fatal(err)
			}
			if err := tq.Put(typedCtx(t), "late"); !errors.Is(err, mpq.ErrSealed) {
				t.Errorf("Put after Seal: got %v; want %v", err, mpq.ErrSealed)
			}
			if err := tq.TryPut("late"); !errors.Is(err, mpq.ErrSealed) {
				t.Errorf("TryPut after Seal: got %v; want %v", err, mpq.ErrSealed)
			}
			if v, err := tq.Get(typedCtx(t)); v != "last" || err != nil {
				t.Errorf("Get after Seal: got %q, %v; want %q, nil", v, err, "last")
			}
			if _, err := tq.Get(typedCtx(t)); err != io.EOF {
				t.Errorf("Get after Seal, drained: got %v; want %v itself", err, io.EOF)
			}
			if _, err := tq.TryGet(); err != io.EOF {
				t.Errorf("TryGet after Seal, drained: got %v; want %v itself", err, io.EOF)
			}
			q.Close()
			if _, err := tq.TryGet(); !errors.Is(err, mpq.ErrClosed) {
				t.Errorf("TryGet after Close: got %v; want %v", err, mpq.ErrClosed)
			}
			if err := tq.TryPut("x"); !errors.Is(err, mpq.ErrClosed) {
				t.Errorf("TryPut after Close: got %v; want %v", err, mpq.ErrClosed)
			}
		})
	}
}

func passThroughInt(t *testing.T, q *mpq.Queue) {
	tq := mpq.QueueOf[int](q, decimalCodec{})
	if _, err := tq.TryGet(); err != mpq.ErrEmpty {
		t.Errorf("TryGet on empty: got %v; want %v", err, mpq.ErrEmpty)
	}
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := tq.Get(typedCtx(t)); err != io.EOF {
		t.Errorf("Get after Seal: got %v; want %v itself", err, io.EOF)
	}
}

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// cborHead returns a CBOR head of major type major declaring n.
func cborHead(major byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{major<<5 | 27}, n)
}

func TestTypedCBORBombs(t *testing.T) {
	const maxMsg = 1 << 20
	deep := func(open string, depth int, end string) []byte {
		return append(bytes.Repeat([]byte(open), depth), end...)
	}
	tooManyElements := append([]byte{0x9a, 0, 2, 0, 1}, make([]byte, 131073)...) // all there, 1 too many
	tooManyPairs := []byte{0xba, 0, 2, 0, 1}
	for i := range 131073 {
		tooManyPairs = append(tooManyPairs, cborInt(i)...)
		tooManyPairs = append(tooManyPairs, 0)
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"nested arrays", deep("\x81", 100000, "\x00")},
		{"nested arrays just over", deep("\x81", 33, "\x00")},
		{"nested maps", deep("\xa1\x00", 100000, "\x00")},
		{"nested tags", deep("\xd8\x40", 100000, "\x00")},
		{"nested indefinite arrays", deep("\x9f", 100000, "")},
		{"huge array", cborHead(4, math.MaxUint64)},
		{"huge array, some elements", append(cborHead(4, 1<<40), make([]byte, 1000)...)},
		{"array under the limit, absent", append([]byte{0x9a, 0, 1, 0, 0}, 1, 2, 3)},
		{"array over the limit", tooManyElements},
		{"huge map", cborHead(5, math.MaxUint64)},
		{"map over the limit", tooManyPairs},
		{"huge byte string", append(cborHead(2, math.MaxInt64), "abc"...)},
		{"huge text string", append(cborHead(3, 1<<62), "abc"...)},
		{"huge indefinite chunks", append([]byte{0x5f}, append(cborHead(2, 1<<50), 0xff)...)},
		{"huge bignum", append([]byte{0xc2}, cborHead(2, 1<<40)...)},
	}
	q := typedQueue(t, &mpq.Options{Capacity: 4 << 20, MaxMessage: maxMsg})
	ctx := typedCtx(t)
	for _, tt := range tests {
		if len(tt.msg) > maxMsg {
			t.Fatalf("%s: message of %d bytes over the maximum", tt.name, len(tt.msg))
		}
		t.Run(tt.name, func(t *testing.T) {
			views := []func() error{
				func() error { _, err := mpq.QueueOf[any](q, nil).Get(ctx); return err },
				func() error { _, err := mpq.QueueOf[[]any](q, nil).Get(ctx); return err },
				func() error { _, err := mpq.QueueOf[map[string]any](q, nil).Get(ctx); return err },
				func() error { _, err := mpq.QueueOf[typedJob](q, nil).Get(ctx); return err },
				func() error { _, err := mpq.QueueOf[[]typedJob](q, nil).Get(ctx); return err },
			}
			for i, get := range views {
				if err := q.Put(ctx, tt.msg); err != nil {
					t.Fatal(err)
				}
				// No time bound here (a loaded machine under -race makes any
				// one flaky): what the limits bound is the work, and the
				// allocation check below is its measure.
				var err error
				n := allocated(func() { err = get() })
				if !errors.Is(err, mpq.ErrDecode) || !strings.Contains(err.Error(), "codec cbor") {
					t.Errorf("view %d: got %v; want an error wrapping %v naming the codec", i, err, mpq.ErrDecode)
				}
				// Allowance: a copy of the message, and then some.
				if limit := uint64(len(tt.msg))*4 + 1<<20; n > limit {
					t.Errorf("view %d: decoding a %d-byte message allocated %d bytes; want at most %d", i, len(tt.msg), n, limit)
				}
			}
		})
	}

	// At the limits, decoding works.
	t.Run("at the limits", func(t *testing.T) {
		msg := append([]byte{0x9a, 0, 2, 0, 0}, make([]byte, 131072)...)
		if err := q.Put(ctx, msg); err != nil {
			t.Fatal(err)
		}
		v, err := mpq.QueueOf[[]int](q, nil).Get(ctx)
		if err != nil || len(v) != 131072 {
			t.Errorf("array of 131072 elements: got %d elements, %v; want 131072, nil", len(v), err)
		}
		if err := q.Put(ctx, deep("\x81", 32, "\x00")); err != nil {
			t.Fatal(err)
		}
		if _, err := mpq.QueueOf[any](q, nil).Get(ctx); err != nil {
			t.Errorf("32 levels of nesting: got %v; want nil", err)
		}
	})
}

// cborInt returns the CBOR encoding of the unsigned integer n < 2^32.
func cborInt(n int) []byte {
	switch {
	case n < 24:
		return []byte{byte(n)}
	case n < 1<<8:
		return []byte{24, byte(n)}
	case n < 1<<16:
		return []byte{25, byte(n >> 8), byte(n)}
	}
	return []byte{26, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// Many goroutines share views and their codecs' buffers.
func TestTypedConcurrent(t *testing.T) {
	const producers, consumers, each = 4, 4, 500
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON, mpq.Raw} {
		t.Run(c.Name(), func(t *testing.T) {
			q := typedQueue(t, &mpq.Options{Capacity: 16 << 10})
			ctx := typedCtx(t)
			var pwg, cwg sync.WaitGroup
			got := make(chan string, producers*each)
			for p := range producers {
				pwg.Go(func() {
					tq := mpq.QueueOf[string](q, c)
					for i := range each {
						if err := tq.Put(ctx, fmt.Sprintf("%d/%d/%s", p, i, strings.Repeat("z", i%50))); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			tq := mpq.QueueOf[string](q, c) // one view shared by the consumers
			for range consumers {
				cwg.Go(func() {
					for {
						v, err := tq.Get(ctx)
						if err == io.EOF {
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
						got <- v
					}
				})
			}
			pwg.Wait()
			q.Seal()
			cwg.Wait()
			close(got)
			seen := map[string]bool{}
			for v := range got {
				if seen[v] {
					t.Errorf("received %q twice", v)
				}
				seen[v] = true
			}
			if len(seen) != producers*each {
				t.Errorf("distinct values received: got %d; want %d", len(seen), producers*each)
			}
			for p := range producers {
				for i := range each {
					if v := fmt.Sprintf("%d/%d/%s", p, i, strings.Repeat("z", i%50)); !seen[v] {
						t.Fatalf("missing %q", v)
					}
				}
			}
		})
	}
}

func TestTypedAccessors(t *testing.T) {
	q := typedQueue(t, nil)
	tests := []struct {
		give mpq.Codec
		want mpq.Codec
	}{
		{nil, mpq.CBOR},
		{mpq.CBOR, mpq.CBOR},
		{mpq.JSON, mpq.JSON},
		{mpq.Raw, mpq.Raw},
	}
	for _, tt := range tests {
		tq := mpq.QueueOf[string](q, tt.give)
		if got := tq.Codec(); got != tt.want {
			t.Errorf("Of(q, %v).Codec(): got %v; want %v", tt.give, got, tt.want)
		}
		if got := tq.Queue(); got != q {
			t.Errorf("Queue(): got %v; want %v", got, q)
		}
	}
	names := map[mpq.Codec]string{mpq.CBOR: "cbor", mpq.JSON: "json", mpq.Raw: "raw"}
	for c, want := range names {
		if got := c.Name(); got != want {
			t.Errorf("Name(): got %q; want %q", got, want)
		}
	}
}

// The codecs used directly wrap their errors too.
func TestCodecErrors(t *testing.T) {
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		if _, err := c.Marshal(make(chan int)); !errors.Is(err, mpq.ErrEncode) || !strings.Contains(err.Error(), "codec "+c.Name()) {
			t.Errorf("%s.Marshal(chan): got %v; want ErrEncode naming the codec", c.Name(), err)
		}
		var v int
		err := c.Unmarshal(nil, &v)
		if !errors.Is(err, mpq.ErrDecode) || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "codec "+c.Name()) {
			t.Errorf("%s.Unmarshal(nil): got %v; want ErrDecode naming the codec, not io.EOF", c.Name(), err)
		}
		if err := c.Unmarshal([]byte("\x01"), v); !errors.Is(err, mpq.ErrDecode) {
			t.Errorf("%s.Unmarshal into a non-pointer: got %v; want %v", c.Name(), err, mpq.ErrDecode)
		}
	}
	// CBOR's Marshal and JSON's Marshal agree with what the views put.
	q := typedQueue(t, nil)
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		want, err := c.Marshal(typedPoint{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := mpq.QueueOf[typedPoint](q, c).Put(typedCtx(t), typedPoint{1, 2}); err != nil {
			t.Fatal(err)
		}
		got, err := q.Get(typedCtx(t))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: message: got %q, %v; want %q, nil", c.Name(), got, err, want)
		}
	}
}

func BenchmarkTyped(b *testing.B) {
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		b.Run(c.Name(), func(b *testing.B) {
			q := typedQueue(b, nil)
			tq := mpq.QueueOf[typedJob](q, c)
			b.ReportAllocs()
			for b.Loop() {
				if err := tq.TryPut(typedSample); err != nil {
					b.Fatal(err)
				}
				if _, err := tq.TryGet(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("raw", func(b *testing.B) {
		q := typedQueue(b, nil)
		tq := mpq.QueueOf[[]byte](q, mpq.Raw)
		msg := make([]byte, 256)
		b.ReportAllocs()
		for b.Loop() {
			if err := tq.TryPut(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := tq.TryGet(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// typedPipe returns the two ends of a duplex pipe, closed when the test ends.
func typedPipe(t *testing.T) (*mpq.Conn, *mpq.Conn) {
	t.Helper()
	a, b, err := mpq.Pipe(true)
	if err != nil {
		t.Fatalf("Pipe: %v", err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestTypedConnRoundTrip(t *testing.T) {
	big := typedSample
	big.Payload = bytes.Repeat([]byte("large "), 400000) // longer than a ring record
	for _, c := range []mpq.Codec{nil, mpq.CBOR, mpq.JSON} {
		name := "default"
		if c != nil {
			name = c.Name()
		}
		t.Run(name, func(t *testing.T) {
			a, b := typedPipe(t)
			ta, tb := mpq.ConnOf[typedJob](a, c), mpq.ConnOf[typedJob](b, c)
			if ta.Conn() != a || tb.Conn() != b {
				t.Errorf("Conn(): got %v, %v; want %v, %v", ta.Conn(), tb.Conn(), a, b)
			}
			if want := mpq.Codec(mpq.CBOR); c == nil && ta.Codec() != want {
				t.Errorf("Codec(): got %v; want %v", ta.Codec(), want)
			}
			ctx := typedCtx(t)
			for _, v := range []typedJob{typedSample, {}, big} {
				// A message larger than the ring is sent while it is received.
				sent := make(chan error, 1)
				go func() { sent <- ta.Send(ctx, v) }()
				got, err := tb.Recv(ctx)
				if err != nil || !reflect.DeepEqual(got, v) {
					t.Errorf("Recv: got ID %v, %v; want the value sent", got.ID, err)
				}
				if err := <-sent; err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			// TrySend sends all or nothing, so a small value.
			if err := tb.TrySend(typedSample); err != nil {
				t.Fatalf("TrySend: %v", err)
			}
			got, err := ta.TryRecv()
			if err != nil || !reflect.DeepEqual(got, typedSample) {
				t.Errorf("TryRecv of TrySend: got ID %v, %v; want the value sent", got.ID, err)
			}
		})
	}
	t.Run("raw", func(t *testing.T) {
		a, b := typedPipe(t)
		ta, tb := mpq.ConnOf[[]byte](a, mpq.Raw), mpq.ConnOf[typedName](b, mpq.Raw)
		if err := ta.Send(typedCtx(t), []byte("raw bytes")); err != nil {
			t.Fatal(err)
		}
		if got, err := tb.Recv(typedCtx(t)); got != "raw bytes" || err != nil {
			t.Errorf("Recv: got %q, %v; want %q, nil", got, err, "raw bytes")
		}
	})
}

func TestTypedConnErrors(t *testing.T) {
	a, b := typedPipe(t)
	ctx := typedCtx(t)
	ta, tb := mpq.ConnOf[any](a, mpq.JSON), mpq.ConnOf[map[string]int](b, mpq.JSON)

	if _, err := tb.TryRecv(); err != mpq.ErrEmpty {
		t.Errorf("TryRecv on empty: got %v; want %v", err, mpq.ErrEmpty)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tb.Recv(canceled); err != context.Canceled {
		t.Errorf("Recv with a canceled context: got %v; want %v", err, context.Canceled)
	}

	// An encoding error sends nothing.
	for _, v := range []any{math.Inf(-1), make(chan int)} {
		if err := ta.Send(ctx, v); !errors.Is(err, mpq.ErrEncode) || !strings.Contains(err.Error(), "codec json") {
			t.Errorf("Send(%T): got %v; want ErrEncode naming the codec", v, err)
		}
		if err := ta.TrySend(v); !errors.Is(err, mpq.ErrEncode) {
			t.Errorf("TrySend(%T): got %v; want %v", v, err, mpq.ErrEncode)
		}
	}
	if _, err := b.TryRecv(); err != mpq.ErrEmpty {
		t.Errorf("TryRecv after failed Sends: got %v; want %v", err, mpq.ErrEmpty)
	}

	// A message that does not decode is consumed; the next one arrives.
	if err := a.Send(ctx, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if err := ta.Send(ctx, []int{1}); err != nil { // JSON, but not a map
		t.Fatal(err)
	}
	if err := ta.Send(ctx, map[string]int{"ok": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Recv(ctx); !errors.Is(err, mpq.ErrDecode) || !strings.Contains(err.Error(), "codec json") {
		t.Errorf("Recv of garbage: got %v; want ErrDecode naming the codec", err)
	}
	if _, err := tb.TryRecv(); !errors.Is(err, mpq.ErrDecode) {
		t.Errorf("TryRecv of the wrong type: got %v; want %v", err, mpq.ErrDecode)
	}
	if got, err := tb.Recv(ctx); err != nil || got["ok"] != 1 {
		t.Errorf("Recv after garbage: got %v, %v; want map[ok:1], nil", got, err)
	}

	// The peer's close reads as io.EOF itself, after what it sent.
	if err := ta.Send(ctx, map[string]int{"last": 2}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if got, err := tb.Recv(ctx); err != nil || got["last"] != 2 {
		t.Errorf("Recv after the peer closed: got %v, %v; want map[last:2], nil", got, err)
	}
	if _, err := tb.Recv(ctx); err != io.EOF {
		t.Errorf("Recv at the end: got %v; want %v itself", err, io.EOF)
	}
	if _, err := tb.TryRecv(); err != io.EOF {
		t.Errorf("TryRecv at the end: got %v; want %v itself", err, io.EOF)
	}
	if err := tb.Send(ctx, map[string]int{}); !errors.Is(err, mpq.ErrPeerClosed) {
		t.Errorf("Send to a closed peer: got %v; want %v", err, mpq.ErrPeerClosed)
	}
}

func TestTypedConnWrongDirection(t *testing.T) {
	r, w, err := mpq.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tr, tw := mpq.ConnOf[string](r, nil), mpq.ConnOf[string](w, nil)
	if err := tr.Send(typedCtx(t), "x"); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("Send on the receiving end: got %v; want %v", err, mpq.ErrWrongDirection)
	}
	if _, err := tw.TryRecv(); !errors.Is(err, mpq.ErrWrongDirection) {
		t.Errorf("TryRecv on the sending end: got %v; want %v", err, mpq.ErrWrongDirection)
	}
	if err := tw.Send(typedCtx(t), "one way"); err != nil {
		t.Fatal(err)
	}
	if got, err := tr.Recv(typedCtx(t)); got != "one way" || err != nil {
		t.Errorf("Recv: got %q, %v; want %q, nil", got, err, "one way")
	}
}

// Decoded values do not share memory with the buffers the views reuse.
func TestTypedDecodedValuesOwnTheirBytes(t *testing.T) {
	type owned struct {
		Data []byte
		Text string
		Any  any
		CBOR cbor.RawMessage
		JSON json.RawMessage
	}
	make1 := func(c mpq.Codec, b byte) owned {
		s := strings.Repeat(string(rune('a'+b)), 100)
		v := owned{Data: bytes.Repeat([]byte{b}, 100), Text: s, Any: []byte(s)}
		if c == mpq.CBOR {
			v.CBOR, _ = cbor.Marshal(s)
		} else {
			v.Any = s
			v.JSON, _ = json.Marshal(s)
		}
		return v
	}
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			q := typedQueue(t, nil)
			tq := mpq.QueueOf[owned](q, c)
			ctx := typedCtx(t)
			var got []owned
			for i := range byte(20) {
				if err := tq.Put(ctx, make1(c, i)); err != nil {
					t.Fatal(err)
				}
				v, err := tq.Get(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			for i, v := range got {
				if want := make1(c, byte(i)); !reflect.DeepEqual(v, want) {
					t.Errorf("value %d after later Gets: got %+v; want %+v", i, v, want)
				}
			}
		})
	}
}
