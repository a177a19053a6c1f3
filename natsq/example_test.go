package natsq_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mpq-go/mpq"
	_ "github.com/mpq-go/mpq/natsq" // registers nats:// with mpq.OpenURL
)

// One function, two backends: the same calls on a queue in shared memory and
// on a queue in NATS JetStream, chosen by URL.
func Example() {
	ctx := context.Background()
	// A nats-server with JetStream, in this process for the example; in
	// production, a server or cluster of its own.
	dir, _ := os.MkdirTemp("", "natsq-example")
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server not ready")
	}

	for _, rawURL := range []string{
		"shm:jobs?dir=" + dir,
		"nats://" + srv.Addr().String() + "/jobs",
	} {
		if err := produceAndConsume(ctx, rawURL); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// shm: got "job 1", "job 2", then EOF
	// nats: got "job 1", "job 2", then EOF
}

func produceAndConsume(ctx context.Context, rawURL string) error {
	q, err := mpq.OpenURL(ctx, rawURL)
	if err != nil {
		return err
	}
	defer q.Close()
	for _, job := range []string{"job 1", "job 2"} {
		if err := q.Put(ctx, []byte(job)); err != nil {
			return err
		}
	}
	if err := q.Seal(); err != nil { // no more jobs: consumers drain, then io.EOF
		return err
	}
	var got []string
	for {
		d, err := q.Receive(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		got = append(got, fmt.Sprintf("%q", d.Data()))
		if err := d.Ack(); err != nil {
			return err
		}
	}
	scheme, _, _ := strings.Cut(rawURL, ":")
	fmt.Printf("%s: got %s, %s, then EOF\n", scheme, got[0], got[1])
	return nil
}
