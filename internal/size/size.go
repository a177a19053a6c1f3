// Package size parses the byte counts of queue URLs, shared by mpq and its
// backends.
package size

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses a byte count such as 4096, 64KiB, 16MiB or 1GiB, at most 1 TiB.
func Parse(s string) (int, error) {
	t, mult := s, 1
	for _, suf := range []struct {
		s string
		m int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(t, suf.s) {
			t, mult = t[:len(t)-len(suf.s)], suf.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/int64(mult) {
		return 0, fmt.Errorf("bad size %q: want a byte count such as 4096, 64KiB or 16MiB", s)
	}
	return int(n) * mult, nil
}
