package mpq_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpq-go/mpq"
	"github.com/mpq-go/mpq/internal/testutil"
)

// TestListenAllowUIDsReachThroughSymlink: Listen's reach check for
// AllowUIDs walks the directories Dir really is in, not its lexical
// parents: a Dir reached through a symbolic link (of this user, which the
// directory walk follows) to a directory below a private one is refused,
// rather than leaving the allowed user "permission denied" at connect.
func TestListenAllowUIDsReachThroughSymlink(t *testing.T) {
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(private, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	public := testutil.Public(t)
	link := filepath.Join(public, "link")
	if err := os.Symlink(sub, link); err != nil {
		t.Fatal(err)
	}
	l, err := mpq.Listen("reach", &mpq.ListenOptions{Dir: link, AllowUIDs: []int{os.Getuid() + 1000}})
	if l != nil {
		l.Close()
	}
	if !errors.Is(err, mpq.ErrInvalidOptions) || !strings.Contains(err.Error(), private) {
		t.Fatalf("Listen in %s (a link to %s): got %v; want ErrInvalidOptions naming %s", link, sub, err, private)
	}
}
