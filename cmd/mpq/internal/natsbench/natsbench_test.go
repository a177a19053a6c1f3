package natsbench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpq-go/mpq/cmd/mpq/internal/natsbench"
)

// TestRunShape runs every row with a handful of messages against an
// embedded server and checks the report's shape, not its figures.
func TestRunShape(t *testing.T) {
	s, err := natsbench.StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var steps []string
	cfg := natsbench.Config{URL: s.ClientURL(), Size: 100, Messages: 200, Runs: 2}
	rep, err := natsbench.Run(ctx, cfg, func(msg string) { steps = append(steps, msg) })
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 {
		t.Error("progress was never called")
	}
	if rep.Config != cfg {
		t.Errorf("Config = %+v, want %+v", rep.Config, cfg)
	}
	if rep.Started.IsZero() || !strings.Contains(rep.Machine, "nats-server "+server.VERSION) {
		t.Errorf("Started %v, Machine %q", rep.Started, rep.Machine)
	}
	want := []string{"publish 100B", "consume 100B"}
	if len(rep.Rows) < len(want) {
		t.Fatalf("%d rows, want at least %d", len(rep.Rows), len(want))
	}
	for i, name := range want {
		if rep.Rows[i].Name != name {
			t.Errorf("row %d is %q, want %q", i, rep.Rows[i].Name, name)
		}
	}
	for _, r := range rep.Rows {
		if r.Baseline <= 0 || r.Backend <= 0 || r.Target != natsbench.Target {
			t.Errorf("%s: baseline %v, backend %v, target %v", r.Name, r.Baseline, r.Backend, r.Target)
		}
		if len(r.BaselineRuns) != cfg.Runs || len(r.BackendRuns) != cfg.Runs {
			t.Errorf("%s: %d and %d runs, want %d", r.Name, len(r.BaselineRuns), len(r.BackendRuns), cfg.Runs)
		}
		for _, v := range append(r.BaselineRuns, r.BackendRuns...) {
			if v <= 0 {
				t.Errorf("%s: a run of %v msg/s", r.Name, v)
			}
		}
		if over := 1 - r.Backend/r.Baseline; over != r.Overhead || r.Pass != (over <= r.Target) {
			t.Errorf("%s: overhead %v pass %v, from baseline %v backend %v", r.Name, r.Overhead, r.Pass, r.Baseline, r.Backend)
		}
	}
	var out bytes.Buffer
	if err := rep.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		if !strings.Contains(out.String(), r.Name) {
			t.Errorf("Print output lacks row %q:\n%s", r.Name, out.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
	t.Logf("\n%s", out.String())

	// Every stream the run made is gone.
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		t.Errorf("stream %s left on the server", n)
	}
	if err := names.Err(); err != nil {
		t.Error(err)
	}
}

func TestRunNoURL(t *testing.T) {
	if _, err := natsbench.Run(context.Background(), natsbench.Config{}, nil); err == nil {
		t.Error("Run without a URL succeeded")
	}
}
