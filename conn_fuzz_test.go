package mpq_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/mpq-go/mpq"
)

// FuzzConnFrames feeds records no mpq sender would write into the ring a
// Conn receives from: Recv must return messages or ErrCorrupt, never panic,
// hang or hand out more than was announced.
func FuzzConnFrames(f *testing.F) {
	f.Add([]byte{2, 'a', 0})
	f.Add([]byte{9, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 'a', 2, 3, 'b', 'c', 3})
	f.Add([]byte{1, 4, 3, 'x', 9, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		q, c := rawConn(t)
		// data is a series of records, each a length byte and that many bytes.
		total, records := 0, 0
		for len(data) > 0 {
			n := min(int(data[0]), len(data)-1)
			rec := data[1 : 1+n]
			data = data[1+n:]
			if q.TryPut(rec) != nil {
				break
			}
			total += len(rec)
			records++
		}
		q.Seal()
		ctx := context.Background()
		// Every Recv consumes at least one record, so a sealed ring of
		// records must reach io.EOF within records+1 calls.
		for range records + 1 {
			m, err := c.Recv(ctx)
			if err != nil && !errors.Is(err, mpq.ErrCorrupt) {
				if err == io.EOF {
					return
				}
				t.Fatalf("Recv: %v", err)
			}
			if len(m) > total {
				t.Fatalf("Recv returned %d bytes of %d put", len(m), total)
			}
		}
		t.Fatalf("no io.EOF after %d Recvs of a sealed ring of %d records", records+1, records)
	})
}
