//go:build linux

package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/bench"
)

// TestParseFlags checks the flags against the Config they make.
func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bench.Config
	}{
		{nil, bench.Config{JSONPath: "bench/results/latest.json", Python: "python3"}},
		{[]string{"-quick", "-reps", "2", "-count", "500", "-json", "x.json", "-python", "py", "-spin", "10us",
			"-rows", "1to1-64, rtt-64,", "-backends", "mpq,socket"},
			bench.Config{JSONPath: "x.json", Quick: true, Reps: 2, Count: 500, Python: "py", Spin: 10 * time.Microsecond,
				Rows: []string{"1to1-64", "rtt-64"}, Backends: []string{"mpq", "socket"}}},
	} {
		got, err := parseFlags(c.args)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseFlags(%q) = %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
	for _, args := range [][]string{{"-spin", "fast"}, {"extra"}, {"-nope"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded; want an error", args)
		}
	}
}
