// Package urlx holds what mpq, its backends and the mpq command share about
// queue URLs: hiding passwords in what they print, and the name in a shm:
// URL.
package urlx

import (
	"errors"
	"net/url"
	"strings"
)

// Redact hides the password of every URL in s as written, even one that
// does not parse: in "scheme://user:pass@host" and "//user:pass@host" the
// password becomes xxxxx.
func Redact(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "//")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+2])
		s = s[i+2:]
		end := strings.IndexAny(s, "/?# \t\n\"'")
		if end < 0 {
			end = len(s)
		}
		at := strings.LastIndex(s[:end], "@")
		if at < 0 {
			continue
		}
		if colon := strings.Index(s[:at], ":"); colon >= 0 {
			b.WriteString(s[:colon+1] + "xxxxx")
			s = s[at:]
		}
	}
}

// ParseError is the reason url.Parse gave for raw, without raw itself
// (which url.Error quotes, password and all).
func ParseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// SHMName returns the queue name of a shm: URL: shm:NAME, shm:///NAME or
// shm://NAME. A URL with a user, or with both a host and a path, names no
// queue: ("", false).
func SHMName(u *url.URL) (string, bool) {
	if u.Opaque != "" {
		return u.Opaque, u.User == nil
	}
	if u.User != nil {
		return "", false
	}
	path := strings.TrimPrefix(u.Path, "/")
	if u.Host != "" && path != "" {
		return "", false
	}
	return u.Host + path, u.Host+path != ""
}
