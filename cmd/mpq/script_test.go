package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mpq-go/mpq"
)

// TestScripts runs the scripts in testdata/script against the real mpq
// binary, which TestMain built. Each script gets its own queue directory
// through MPQ_DIR. Besides testscript's commands, a script has
//
//	status N PROG [ARGS...]   run PROG, which must exit with status N
//	                          (stdout and stderr then check its output)
//	attached NAME N [waiting] wait until N processes have queue NAME open
//	                          (and, with waiting, each sleeps in a get or put)
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: scriptSetup,
		Cmds:  scriptCmds,
	})
}

// scriptSetup puts the mpq binary on a script's PATH and gives it a queue
// directory of its own.
func scriptSetup(env *testscript.Env) error {
	env.Setenv("PATH", filepath.Dir(mpqBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
	env.Setenv("MPQ_DIR", filepath.Join(env.WorkDir, "queues"))
	return nil
}

// scriptCmds are the commands scripts have besides testscript's.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"attached": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 || len(args) > 3 || len(args) == 3 && args[2] != "waiting" {
			ts.Fatalf("usage: attached NAME N [waiting]")
		}
		waiting := func(ps []mpq.Attached) bool {
			for _, p := range ps {
				if len(args) == 3 && !p.WaitingData && !p.WaitingSpace {
					return false
				}
			}
			return true
		}
		want, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("attached: %v", err)
		}
		var s mpq.Stats
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if s, err = mpq.Inspect(args[0], &mpq.Options{Dir: ts.Getenv("MPQ_DIR")}); err == nil && len(s.Procs) == want && waiting(s.Procs) {
				return
			}
		}
		ts.Fatalf("queue %s: %d processes attached, not %d (last error %v)", args[0], len(s.Procs), want, err)
	},
	"status": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: status N PROG [ARGS...]")
		}
		want, err := strconv.Atoi(args[0])
		if err != nil {
			ts.Fatalf("status: %v", err)
		}
		got := 0
		if err := ts.Exec(args[1], args[2:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("%s: %v", args[1], err)
			}
			got = ee.ExitCode()
		}
		if got != want {
			ts.Fatalf("%s exited with status %d; want %d", args[1], got, want)
		}
	},
}
