package mpq_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mpq-go/mpq"
)

// A Label is checked wherever Options are: New takes any short printable
// text, ':' and spaces included, and refuses the others with
// ErrInvalidOptions saying what is wrong; Open and Create refuse any Label,
// since a named queue's name is its label.
func TestLabelValidation(t *testing.T) {
	for _, tc := range []struct {
		label string
		want  string // "" if accepted, else what the error says
	}{
		{"", ""},
		{"pool square: tasks", ""},
		{"pool square: results", ""},
		{"ünïcode ✓ 队列", ""},
		{"fd3", ""},
		{strings.Repeat("x", mpq.MaxLabel), ""},
		{strings.Repeat("x", mpq.MaxLabel+1), "longer than MaxLabel"},
		{strings.Repeat("é", mpq.MaxLabel/2+1), "longer than MaxLabel"},
		{"a/b", "contains '/'"},
		{"tab\there", "control character"},
		{"new\nline", "control character"},
		{"nul\x00", "control character"},
		{"del\x7f", "control character"},
		{"c1\u0085", "control character"},
		{"bad\xffutf8", "not valid UTF-8"},
	} {
		q, err := mpq.New(&mpq.Options{Label: tc.label, Capacity: 4096})
		if tc.want == "" {
			if err != nil {
				t.Errorf("New with Label %q: got %v; want nil", tc.label, err)
				continue
			}
			q.Close()
			continue
		}
		if err == nil {
			q.Close()
		}
		if !errors.Is(err, mpq.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "give a short printable text") {
			t.Errorf("New with Label %q: got %v; want %v saying %q and how to fix it", tc.label, err, mpq.ErrInvalidOptions, tc.want)
		}
	}
}

func TestLabelRefusedOnNamedQueues(t *testing.T) {
	dir := t.TempDir()
	opts := &mpq.Options{Dir: dir, Label: "jobs"}
	if q, err := mpq.Open("jobs", opts); !errors.Is(err, mpq.ErrInvalidOptions) || !strings.Contains(err.Error(), "a named queue's name is its label") {
		if err == nil {
			q.Close()
		}
		t.Errorf("Open with a Label: got %v; want %v saying why", err, mpq.ErrInvalidOptions)
	}
	if q, err := mpq.Create("jobs", opts); !errors.Is(err, mpq.ErrInvalidOptions) {
		if err == nil {
			q.Close()
		}
		t.Errorf("Create with a Label: got %v; want %v", err, mpq.ErrInvalidOptions)
	}
	if names, err := mpq.List(dir); err != nil || len(names) != 0 {
		t.Errorf("after the refused Open and Create: got queues %v (%v); want none", names, err)
	}
	// Inspect takes only Dir of its Options.
	q, err := mpq.Create("jobs", &mpq.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if s, err := mpq.Inspect("jobs", opts); err != nil || s.Label != "" {
		t.Errorf("Inspect with a Label: got label %q, %v; want \"\", nil", s.Label, err)
	}
}
