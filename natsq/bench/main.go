// Command bench measures the natsq backend against raw nats.go (its
// jetstream package) doing the same work on the same NATS server in the
// same run, prints one table and writes it as JSON. The rows, and how they
// are measured, are those of package github.com/mpq-go/mpq/natsq/natsbench.
//
// Run it from the workspace root:
//
//	go run ./natsq/bench                           # embedded nats-server
//	go run ./natsq/bench -url nats://127.0.0.1:4222 # a server of your own
//
// Without -url it starts a nats-server in the process, listening on a
// random port of 127.0.0.1, with JetStream storing its files in a new
// directory under TMPDIR, removed at the end.
//
// Flags:
//
//	-url URL        a server with JetStream to measure against, instead of an embedded one
//	-size N         message size in bytes (default 64)
//	-messages N     messages per timed run (default 80000)
//	-runs N         timed runs of each contender per row (default 5)
//	-json PATH      where to write the JSON (default natsq/bench/results/latest.json)
//	-cpuprofile F   write a CPU profile of the run, embedded server included, to F
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mpq-go/mpq/natsq/natsbench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg natsbench.Config
	var jsonPath, cpuProfile string
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&cfg.URL, "url", "", "`nats://HOST:PORT` of a server with JetStream (default: an embedded nats-server)")
	fs.IntVar(&cfg.Size, "size", 0, "message size in bytes (default 64)")
	fs.IntVar(&cfg.Messages, "messages", 0, "messages per timed run (default 80000)")
	fs.IntVar(&cfg.Runs, "runs", 0, "timed runs of each contender per row (default 5)")
	fs.StringVar(&jsonPath, "json", "natsq/bench/results/latest.json", "write the results as JSON to `path`")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server included) to `path`")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	where := cfg.URL
	if cfg.URL == "" {
		s, dir, err := startServer()
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		defer func() { s.Shutdown(); s.WaitForShutdown() }()
		cfg.URL = s.ClientURL()
		where = fmt.Sprintf("embedded nats-server %s at %s, JetStream store in %s", server.VERSION, cfg.URL, dir)
	}
	fmt.Fprintf(os.Stderr, "server: %s\n", where)
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	progress := func(msg string) { fmt.Fprintf(os.Stderr, "  %s\n", msg) }
	rep, err := natsbench.Run(ctx, cfg, progress)
	if len(rep.Rows) > 0 {
		fmt.Println()
		if perr := rep.Print(os.Stdout); perr != nil && err == nil {
			err = perr
		}
		if jerr := writeJSON(jsonPath, where, rep); jerr != nil && err == nil {
			err = jerr
		} else if jerr == nil {
			fmt.Printf("\nJSON: %s\n", jsonPath)
		}
	}
	return err
}

// startServer starts a nats-server with JetStream in the process, on a
// random port of 127.0.0.1, storing in a new temporary directory.
func startServer() (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "natsq-bench-")
	if err != nil {
		return nil, "", err
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("nats-server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		os.RemoveAll(dir)
		return nil, "", errors.New("nats-server on 127.0.0.1 not ready after 10s")
	}
	return s, dir, nil
}

// writeJSON writes the report, with where the server was, to path.
func writeJSON(path, where string, rep natsbench.Report) error {
	out := struct {
		natsbench.Report
		Server string `json:"server"`
	}{rep, where}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
