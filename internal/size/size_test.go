package size

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"4096", 4096, true},
		{"64KiB", 64 << 10, true},
		{"16MiB", 16 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1024GiB", 1 << 40, true},
		{"1025GiB", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"1KB", 0, false}, // only the binary suffixes
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{" 1", 0, false},
	} {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
