package natsq_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"mpq"
	_ "mpq/natsq"
)

func TestSmoke(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := mpq.OpenURL(ctx, queueURL(s, "jobs", "max-msgs=3"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := 0; i < 3; i++ {
		if err := q.Put(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TryPut([]byte("x")); !errors.Is(err, mpq.ErrFull) {
		t.Fatalf("TryPut on full: %v", err)
	}
	t.Logf("len %d", q.Len())
	m, err := q.Get(ctx)
	t.Logf("get %v %v", m, err)
	d, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recv %v count %d deadline %v", d.Data(), d.Count(), time.Until(d.Deadline()))
	if err := d.Nack(); err != nil {
		t.Fatal(err)
	}
	if err := q.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, []byte("late")); !errors.Is(err, mpq.ErrSealed) {
		t.Fatalf("Put after seal: %v", err)
	}
	for {
		d, err := q.Receive(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("recv %v count %d", d.Data(), d.Count())
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Get(ctx); err != io.EOF {
		t.Fatalf("Get after drain: %v", err)
	}
}
