package testutil_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mpq-go/mpq/internal/testutil"
)

func init() {
	testutil.Register("whoami", func() error {
		testutil.Say("uid %d", os.Getuid())
		return nil
	})
}

func TestHelperProcess(t *testing.T) { testutil.RunHelper(t) }

func TestAsUser(t *testing.T) {
	uid, gid := testutil.Nobody(t)
	c := testutil.Start(t, "whoami", testutil.AsUser(uid, gid))
	if got := c.Expect("uid ", 10*time.Second); got != "uid "+strconv.Itoa(uid) {
		t.Errorf("child runs as uid %s; want %d", got, uid)
	}
	c.Succeed(10 * time.Second)
}
