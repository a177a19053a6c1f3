package proc_test

import (
	"context"
	"testing"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/proc"
)

var echoer = proc.Define("zz-echo", func(ctx context.Context, in, out *mpq.Queue, ack bool) error {
	for {
		if ack {
			d, err := in.Receive(ctx)
			if err != nil {
				return err
			}
			if err := out.Put(ctx, d.Data()); err != nil {
				return err
			}
			d.Ack()
			continue
		}
		m, err := in.Get(ctx)
		if err != nil {
			return err
		}
		if err := out.Put(ctx, m); err != nil {
			return err
		}
	}
})

func BenchmarkZZEcho(b *testing.B) {
	for _, mode := range []string{"direct", "ack", "ack+collector"} {
		b.Run(mode, func(b *testing.B) {
			in, out := newQueue(b), newQueue(b)
			p := start(b, echoer, nil, in, out, mode != "direct")
			_ = p
			msg := make([]byte, 64)
			if mode != "ack+collector" {
				for b.Loop() {
					in.Put(b.Context(), msg)
					out.Get(b.Context())
				}
				return
			}
			ch := make(chan []byte, 1)
			go func() {
				for {
					m, err := out.Get(context.Background())
					if err != nil {
						return
					}
					ch <- m
				}
			}()
			for b.Loop() {
				in.Put(b.Context(), msg)
				<-ch
			}
		})
	}
}
