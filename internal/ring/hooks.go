package ring

// Test hooks. Built with the tag mpqhooks, the ring calls TestHook (see
// hooks_on.go) at the points below, where tests stop a process for good,
// holding a lock, to kill it there. Without the tag hook is empty and hooked
// is false: release builds pay nothing for them.
const (
	HookPut     = "put"     // a producer holds the lock and has copied half the message
	HookGet     = "get"     // a consumer holds the lock and is about to copy a message out
	HookReceive = "receive" // a consumer holds the lock, has filled a deliveries entry, not yet marked the record
	HookTaken   = "taken"   // a consumer holds the lock, has marked the record taken, not yet moved head
	HookAck     = "ack"     // a consumer holds the lock, has marked the record done, not yet freed the entry
)
