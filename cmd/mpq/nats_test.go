package main

import (
	"context"
	"maps"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mpq-go/mpq/cmd/mpq/internal/natsbench"
	"github.com/mpq-go/mpq/natsq"
)

// TestNATSScripts runs the scripts in testdata/nats against the real mpq
// binary and a real nats-server, with JetStream, that this test process
// runs on 127.0.0.1: one server per script, its store in the script's
// directory. Besides what TestScripts gives a script, it has
//
//	$NATS      the server's URL, nats://127.0.0.1:PORT
//	$DEADNATS  the URL of a port on 127.0.0.1 that nothing listens on
//	$DEADADDR  its HOST:PORT
//	waiting URL   wait until a consumer of the queue at URL waits at the
//	              server for messages (a get blocked on the empty queue)
func TestNATSScripts(t *testing.T) {
	cmds := maps.Clone(scriptCmds)
	cmds["waiting"] = waitingCmd
	testscript.Run(t, testscript.Params{
		Dir: "testdata/nats",
		Setup: func(env *testscript.Env) error {
			if err := scriptSetup(env); err != nil {
				return err
			}
			s, err := natsbench.StartServer(filepath.Join(env.WorkDir, ".jetstream"))
			if err != nil {
				return err
			}
			env.Defer(func() { s.Shutdown(); s.WaitForShutdown() })
			env.Setenv("NATS", "nats://"+s.Addr().String())
			dead, err := closedPort()
			if err != nil {
				return err
			}
			env.Setenv("DEADADDR", dead)
			env.Setenv("DEADNATS", "nats://"+dead)
			return nil
		},
		Cmds: cmds,
	})
}

// closedPort returns HOST:PORT of a port on 127.0.0.1 that was free a
// moment ago and that nothing listens on now.
func closedPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func waitingCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waiting URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := natsq.OpenURL(ctx, args[0]+"?no-create=true")
	if err != nil {
		ts.Fatalf("waiting: %v", err)
	}
	defer q.Close()
	var st natsq.Stats
	for ctx.Err() == nil {
		if st, err = q.Stats(ctx); err == nil && st.Waiting > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("waiting: no consumer waiting on %s after 20s (last %+v, %v)", args[0], st, err)
}
