package mpq_test

import (
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mpq-go/mpq"
)

// fuzzRecord has fields of several kinds for FuzzTypedDecode to fill.
type fuzzRecord struct {
	ID     int64              `json:"id" cbor:"id"`
	Count  uint16             `json:"count" cbor:"count"`
	Name   string             `json:"name" cbor:"name"`
	Score  float64            `json:"score" cbor:"score"`
	OK     bool               `json:"ok" cbor:"ok"`
	Data   []byte             `json:"data" cbor:"data"`
	Tags   []string           `json:"tags" cbor:"tags"`
	Attrs  map[string]int     `json:"attrs" cbor:"attrs"`
	Fixed  [3]int8            `json:"fixed" cbor:"fixed"`
	When   time.Time          `json:"when" cbor:"when"`
	Next   *fuzzRecord        `json:"next" cbor:"next"`
	Points []typedPoint       `json:"points" cbor:"points"`
	Nested map[string][]int32 `json:"nested" cbor:"nested"`
}

// FuzzTypedDecode puts arbitrary bytes in a queue and gets them through
// typed views with CBOR and JSON: a typed Get never panics, returns either a
// value or an error wrapping ErrDecode that names the codec (never io.EOF),
// and consumes the message either way. A value it returns encodes and
// decodes again.
func FuzzTypedDecode(f *testing.F) {
	for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
		next := &fuzzRecord{Name: "next", Tags: []string{}}
		for _, v := range []fuzzRecord{
			{},
			{ID: -7, Count: 3, Name: "a", Score: 1.5, OK: true, Data: []byte{0, 255},
				Tags: []string{"x", ""}, Attrs: map[string]int{"k": 1}, Fixed: [3]int8{-1, 0, 1},
				When: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Next: next,
				Points: []typedPoint{{1, 2}}, Nested: map[string][]int32{"n": {1, -2}}},
		} {
			msg, err := c.Marshal(v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(msg)
		}
	}
	for _, s := range []string{
		"", "{", "null", "[]", `{"id": 1e999}`, `{"next": {"next": {"next": null}}}`,
		"\xff", "\x9f\x9f\x9f", "\xa1\x62id\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00", // id: NaN
		"\xbf\x62id\x01\xff", "\xc1\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", // time overflow
		"\xa1\x64when\xc0\x60", "\x9b\xff\xff\xff\xff\xff\xff\xff\xff",
	} {
		f.Add([]byte(s))
	}

	q, err := mpq.New(&mpq.Options{Capacity: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { q.Close() })
	maxMsg := q.Stats().MaxMessage

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxMsg {
			t.Skip("longer than a message")
		}
		for _, c := range []mpq.Codec{mpq.CBOR, mpq.JSON} {
			tq := mpq.QueueOf[fuzzRecord](q, c)
			if err := q.TryPut(data); err != nil {
				t.Fatalf("TryPut: %v", err)
			}
			v, err := tq.TryGet()
			if n := q.Len(); n != 0 {
				t.Fatalf("%s: Len after a typed Get: got %d; want 0", c.Name(), n)
			}
			if err != nil {
				if !errors.Is(err, mpq.ErrDecode) || errors.Is(err, io.EOF) ||
					!strings.HasPrefix(err.Error(), "mpq: cannot decode message: codec "+c.Name()+": ") {
					t.Fatalf("%s: got %v; want an error wrapping %v naming the codec", c.Name(), err, mpq.ErrDecode)
				}
				if !reflect.DeepEqual(v, fuzzRecord{}) {
					t.Fatalf("%s: got %+v with an error; want the zero value", c.Name(), v)
				}
				continue
			}
			// What decoded encodes again, unless it holds what the codec
			// cannot encode (JSON: NaN and infinities, which CBOR may decode).
			if err := tq.TryPut(v); err != nil {
				if c == mpq.JSON || !errors.Is(err, mpq.ErrEncode) {
					t.Fatalf("%s: TryPut of a decoded value: %v", c.Name(), err)
				}
				continue
			}
			w, err := tq.TryGet()
			if err != nil {
				t.Fatalf("%s: TryGet of a re-encoded value: %v", c.Name(), err)
			}
			if !hasNaN(v) && !reflect.DeepEqual(normalTimes(w), normalTimes(v)) {
				t.Fatalf("%s: value changed in a round trip:\ngot  %+v\nwant %+v", c.Name(), w, v)
			}
		}
	})
}

// hasNaN reports whether r or a record it links to has a NaN score.
func hasNaN(r fuzzRecord) bool {
	for p := &r; p != nil; p = p.Next {
		if math.IsNaN(p.Score) {
			return true
		}
	}
	return false
}

// normalTimes returns r with its times in UTC and without monotonic
// readings, for comparison: a time's location does not survive encoding.
func normalTimes(r fuzzRecord) fuzzRecord {
	r.When = r.When.UTC()
	if r.Next != nil {
		n := normalTimes(*r.Next)
		r.Next = &n
	}
	return r
}
