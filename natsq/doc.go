// Package natsq puts mpq's queue on NATS JetStream, for when producers and
// consumers no longer fit on one machine. A [Queue] has the methods of
// [mpq.Queue] that [mpq.MessageQueue] names, with the same meanings, so a
// program written against that interface moves between shared memory and
// NATS by changing a URL:
//
//	import _ "github.com/mpq-go/mpq/natsq" // registers the nats: scheme with mpq.OpenURL
//
//	q, err := mpq.OpenURL(ctx, "nats://127.0.0.1:4222/jobs") // or "shm:jobs"
//
// # How a queue maps onto JetStream
//
// A queue NAME is a stream NAME with work-queue retention on the subject
// mpq.NAME, and one durable pull consumer, "mpq", that every handle of every
// process shares: each message goes to one consumer, and an acknowledged
// message leaves the stream. Backpressure comes from the stream's MaxMsgs and
// MaxBytes with DiscardNew: Put waits while the stream is full and TryPut
// returns [mpq.ErrFull]. Receive's lease is the consumer's AckWait, and a
// message received and never acknowledged (its consumer was killed, or
// Nacked it) is delivered again when the lease ends, with its count; after
// MaxDeliveries deliveries it goes to the DeadLetter queue or is dropped.
//
// Seal moves the stream to another subject and records that in the stream's
// metadata: the server refuses every later publish (Put returns
// [mpq.ErrSealed]), the stream keeps its messages for the consumers, and
// once they are all acknowledged Get and Receive return io.EOF. A seal is
// permanent, as on shared memory, and survives a restart of the server.
//
// # Differences from shared memory
//
//   - Get and TryGet acknowledge the message as they return it, without
//     waiting for the server. If the acknowledgement is lost (the connection
//     breaks at that instant) the message is delivered again after the
//     lease: Get is at least once, where on shared memory it is exactly once.
//     Delivery.Ack waits for the server's confirmation.
//   - Get fetches up to Options.Prefetch messages per request and hands
//     them out one at a time (Receive fetches one, so that a slow worker
//     does not sit on messages others could do). They count as delivered
//     (NumAckPending) while they wait in the handle, and their lease runs
//     from the fetch. Other handles do not get them meanwhile, and a message
//     given back with Nack is delivered again after them, not before. Close gives back the ones
//     not handed out. A message that waited in the handle for most of its
//     lease is given back rather than handed out. Prefetch=1 avoids all
//     this, at the cost of a request per message. A queue with
//     MaxDeliveries always fetches one at a time, since JetStream counts
//     each message fetched as a delivery.
//   - Blocked calls (Put on a full queue, Get and Receive on an empty one)
//     ask the server again every Options.Poll (default 250 ms): they notice
//     Seal, and room made by other consumers, within that time. A Get or
//     Receive waiting at the server also returns up to Poll after its
//     context ends or Close begins: its request runs out by itself, so that
//     a message already on its way is kept for the next call (or given back
//     by Close), never dropped to wait out a lease.
//   - Put is at least once when the connection fails: a Put whose
//     acknowledgement from the server was lost (a timeout, a broken
//     connection after the server stored the message) publishes again, and
//     the message may then be in the queue twice. Dial's connections have
//     no reconnect buffer, so a publish is never replayed behind Put's back;
//     a connection given to Open should set nats.ReconnectBufSize(-1) too.
//   - A message past MaxDeliveries that the dead-letter queue does not take
//     (full, unreachable) is given back and tried again 100 ms later, and
//     Nack returns nil, as on shared memory; it is not delivered meanwhile,
//     so the queue is not done (io.EOF) until it is dead-lettered.
//   - Put, Get and Receive with a context already done return ctx.Err()
//     unless Get or Receive has a message fetched already; on shared memory
//     they look at the context only when they have to wait.
//   - Ack, Nack and Extend after the end of the lease, by the handle's clock,
//     return mpq.ErrLeaseExpired even if the server has not yet given the
//     message to another consumer; on shared memory, Ack succeeds until the
//     message was given back.
//   - Delivery.Extend renews the lease for the consumer's whole AckWait,
//     whatever duration it is given (JetStream's "in progress").
//   - Len asks the server, and returns -1 if it cannot. It counts the
//     messages this handle fetched and has not handed out, but not those of
//     other handles, nor messages given back and waiting for another
//     delivery (shared memory counts these).
package natsq

// Where the code is, one file per concern (as in nats.go's jetstream):
//
//	queue.go       the Queue; Open, Dial, Close; the calls Close waits for
//	options.go     Options, their defaults and checks; queue names
//	provision.go   finding or creating the stream and the consumer
//	put.go         Put, TryPut
//	get.go         Get, TryGet, Receive, TryReceive
//	fetch.go       pull requests and the messages a handle holds
//	delivery.go    a Delivery's Ack, Nack and Extend
//	deadletter.go  MaxDeliveries and the dead-letter queue
//	seal.go        Seal, and when a sealed queue is done
//	join.go        Join
//	stats.go       Stats, Len
//	remove.go      Remove, RemoveURL
//	url.go         ParseURL, OpenURL and the nats: scheme
