package handshake_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mpq-go/mpq/internal/handshake"
)

// FuzzHandshake reads arbitrary bytes as each of the four messages, whole
// and cut to the message's size: Unmarshal must not panic, must refuse only
// with one of the package's errors, and what it accepts Marshal must write
// back byte for byte.
func FuzzHandshake(f *testing.F) {
	for _, tc := range pinned(f) {
		f.Add(unhex(f, tc.wire))
	}
	f.Add([]byte("MPQL"))
	f.Add([]byte{})
	named := []error{handshake.ErrLength, handshake.ErrMagic, handshake.ErrVersion,
		handshake.ErrStatus, handshake.ErrFlags, handshake.ErrReserved}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []message{&handshake.Hello{}, &handshake.Reply{}, &handshake.Verdict{}, &handshake.Final{}} {
			size := len(m.Marshal())
			for _, b := range [][]byte{data, data[:min(len(data), size)]} {
				err := m.Unmarshal(b)
				if err == nil {
					if got := m.Marshal(); !bytes.Equal(got, b) {
						t.Fatalf("%T: Unmarshal(%x) then Marshal gives %x", m, b, got)
					}
					continue
				}
				if !matchesAny(err, named) {
					t.Fatalf("%T: Unmarshal(%x): %v is none of the package's errors", m, b, err)
				}
			}
		}
	})
}

func matchesAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
