package mpq

import (
	"errors"
	"testing"
)

// The default MaxMessage fits every Capacity the options allow, up to
// the 1 TiB maximum; an explicit one over the limit is still refused. The
// settings are checked without making a queue of that size.
func TestDefaultMaxMessageSize(t *testing.T) {
	const maxMsg = 1<<32 - 1
	for _, tc := range []struct {
		opts Options
		want uint64 // the maximum message size; 0: refused
	}{
		{Options{}, 1 << 20},
		{Options{Capacity: 4 << 10}, 1 << 10},
		{Options{Capacity: 8 << 30}, 2 << 30},
		{Options{Capacity: 16<<30 - 1}, maxMsg},
		{Options{Capacity: 16 << 30}, maxMsg},
		{Options{Capacity: 16 << 30, Durable: true}, maxMsg},
		{Options{Capacity: 1 << 40}, maxMsg},
		{Options{Capacity: 1 << 40, Durable: true}, maxMsg},
		{Options{Capacity: 1 << 40, MaxMessage: 1 << 20}, 1 << 20},
		{Options{Capacity: 1 << 40, MaxMessage: maxMsg}, maxMsg},
		{Options{Capacity: 1 << 40, MaxMessage: maxMsg + 1}, 0},
		{Options{Capacity: 1<<40 + 1}, 0},
	} {
		s, err := tc.opts.settings()
		if tc.want == 0 {
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("%+v: got %v; want %v", tc.opts, err, ErrInvalidOptions)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: got %v; want a maximum message size of %d", tc.opts, err, tc.want)
			continue
		}
		if got := s.geometry.MaxMessage; got != tc.want {
			t.Errorf("%+v: got MaxMessage %d; want %d", tc.opts, got, tc.want)
		}
		if err := s.geometry.Validate(); err != nil {
			t.Errorf("%+v: the ring refuses the settings' geometry: got %v; want nil", tc.opts, err)
		}
	}
}
