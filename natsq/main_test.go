package natsq_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind: a handle's, a
// blocked call's, or the embedded nats-server's after Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
