package mpq_test

// Test hooks. The ring calls ring.TestHook at exact points inside a put, a
// get, a receive and an ack (ring.HookPut and the others) only in builds
// with the tag mpqhooks, so that release builds pay nothing for them. The
// tests that stop a process at such a point (death_test.go,
// ack_hooks_test.go, TestDurableStoppedWriter) carry the tag; run them with
//
//	go test -tags mpqhooks ./...
//
// Child helpers call stopAt in every build: without the tag, a child asked
// to stop at a hook (envHookAfter >= 0) panics, failing its test.

// envHookAfter makes a helper that calls stopAt stop for good (after saying
// "stuck") inside its call number N+1 of the hook, holding the lock; -1
// means never.
const envHookAfter = "MPQ_TEST_HOOK_AFTER"
