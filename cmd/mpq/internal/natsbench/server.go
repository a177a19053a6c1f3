package natsbench

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartServer starts a nats-server with JetStream in the process, on a
// random port of 127.0.0.1, storing its streams in dir. The caller shuts it
// down (Shutdown, then WaitForShutdown).
func StartServer(dir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats-server on 127.0.0.1 not ready after 10s")
	}
	return s, nil
}
