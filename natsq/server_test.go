package natsq_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startServer runs a real nats-server in the test process, listening on
// 127.0.0.1 (port 0 picks a free one, or pass the port of a server being
// restarted), with JetStream storing its files in dir.
func startServer(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatalf("nats-server on 127.0.0.1:%d not ready after 10s", port)
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// queueURL is the nats:// URL of queue name on s, with params appended.
func queueURL(s *server.Server, name, params string) string {
	u := fmt.Sprintf("nats://%s/%s", s.Addr().String(), name)
	if params != "" {
		u += "?" + params
	}
	return u
}
