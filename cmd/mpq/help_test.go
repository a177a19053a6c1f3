package main

import (
	"bytes"
	"strings"
	"testing"
)

// Every command's --help shows at least one example, and exits 0.
func TestHelpExamples(t *testing.T) {
	root := newRoot(&env{})
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run([]string{c.Name(), "--help"}, strings.NewReader(""), &out, &errOut); code != 0 {
				t.Fatalf("mpq %s --help: exit %d, stderr %q", c.Name(), code, errOut.String())
			}
			if !strings.Contains(out.String(), "Examples:\n  mpq "+c.Name()) {
				t.Errorf("mpq %s --help shows no example:\n%s", c.Name(), out.String())
			}
		})
	}
	var out bytes.Buffer
	if code := run(nil, strings.NewReader(""), &out, &out); code != 0 || !strings.Contains(out.String(), "Available Commands:") {
		t.Errorf("mpq with no arguments: exit %d, output:\n%s", code, out.String())
	}
}

// The commands that take a queue URL show one in their examples.
func TestHelpURLExamples(t *testing.T) {
	for _, name := range []string{"put", "get", "seal", "stat", "bench"} {
		var out, errOut bytes.Buffer
		if code := run([]string{name, "--help"}, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("mpq %s --help: exit %d, stderr %q", name, code, errOut.String())
		}
		_, ex, _ := strings.Cut(out.String(), "Examples:\n")
		ex, _, _ = strings.Cut(ex, "\n\n")
		if !strings.Contains(ex, "mpq "+name+" nats://127.0.0.1:4222") {
			t.Errorf("mpq %s --help shows no nats:// example:\n%s", name, ex)
		}
	}
}
