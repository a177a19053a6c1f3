package main

import (
	"slices"
	"testing"
)

// Anonymous queues are named for their lowest holder and label, or
// descriptor when unlabelled, and by descriptor and label when one process
// holds two of a label; they come sorted by that holder.
func TestNameAnonymous(t *testing.T) {
	qs := []*anonQueue{
		{label: "pool sq: results", holders: []anonFD{{300, 9}, {200, 8}}},
		{label: "", holders: []anonFD{{200, 12}, {200, 4}}},
		{label: "twin", holders: []anonFD{{400, 5}}},
		{label: "twin", holders: []anonFD{{400, 6}}},
		{label: "twin", holders: []anonFD{{401, 6}}},
		{label: "pool sq: tasks", holders: []anonFD{{200, 7}, {300, 3}}},
	}
	nameAnonymous(qs)
	var got []string
	for _, q := range qs {
		got = append(got, q.name)
	}
	want := []string{"@200:fd4", "@200:pool sq: tasks", "@200:pool sq: results", "@400:fd5:twin", "@400:fd6:twin", "@401:twin"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
	if got, want := qs[2].pids(), []int{200, 300}; !slices.Equal(got, want) {
		t.Errorf("pids of %s: got %v; want %v", qs[2].name, got, want)
	}
	if got, want := qs[2].path(), "/proc/200/fd/8"; got != want {
		t.Errorf("path of %s: got %v; want %v", qs[2].name, got, want)
	}
}
