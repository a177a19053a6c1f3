// Package mpq is a multi-process message queue: a bounded queue in shared
// memory that any number of producer and consumer processes open by name (or
// receive as a file descriptor) and use at memory speed, and that keeps
// working when any of them is killed.
//
// It brings the Queue and Pipe of Python's multiprocessing to Go (the proc
// package brings its Process), with Go's idioms: blocking calls take a
// [context.Context], errors are sentinels tested with [errors.Is], and the
// end of a stream is [io.EOF].
//
// # Basics
//
// [Open] opens a named queue, creating it if needed; [New] creates an
// anonymous one to hand to child processes ([Queue.File], [OpenFile]).
// [Queue.Put] copies a message in, waiting while the queue is full;
// [Queue.Get] takes the oldest message out, waiting while it is empty. Each
// has a non-blocking twin ([Queue.TryPut], [Queue.TryGet]) that returns
// [ErrFull] or [ErrEmpty]. When the producers are done, [Queue.Seal] the
// queue: consumers receive what is left and then io.EOF.
//
//	q, err := mpq.Open("jobs", nil)
//	...
//	err = q.Put(ctx, []byte("hello"))
//	msg, err := q.Get(ctx)
//
// For speed, [Queue.AppendGet] receives into a caller's buffer without
// allocating, and [Queue.PutBatch] and [Queue.GetBatch] move many messages
// per lock acquisition.
//
// [Pipe] returns the two ends of a connection ([Conn]), duplex or one-way,
// as Python's Pipe does: [Conn.Send] and [Conn.Recv] move whole messages of
// up to [MaxConnMessage] bytes through shared memory, and Recv returns
// io.EOF once the other end is closed or its process has died. Unrelated
// processes connect with [Listen] and [Dial], by name, with an optional
// shared key.
//
// [Queue.Stats] reports a queue's counters and its processes: what each is
// doing, and which died still owning part of the queue. [Inspect] reads the
// same from a queue file without attaching to it, and [List] names the
// queues of a directory; the mpq command (cmd/mpq) is built on them.
//
// # Acknowledgements and Join
//
// [Queue.Receive] takes a message in acknowledgement mode: the message stays
// in the queue, held for the consumer, until [Delivery.Ack]. [Delivery.Nack]
// (or [Delivery.NackAfter]) gives it back; so does the end of the delivery's
// lease ([Options].Lease, extended by [Delivery.Extend]) and the death of
// the consumer's process. A message given back is delivered again before
// newer ones, with its [Delivery.Count]; after [Options].MaxDeliveries
// deliveries it goes to the [Options].DeadLetter queue instead. [Queue.Join]
// waits until every message put before it was taken by Get or acknowledged.
//
// # Durable queues
//
// With [Options].Durable a named queue in a directory on disk survives the
// machine stopping. Each record carries a CRC32C, [Options].Sync says when
// Puts reach the disk ([SyncEveryPut], [SyncEvery], [SyncNever]) and
// [Queue.Sync] flushes on demand. The first process to open the queue after a
// crash recovers it: records torn by the crash are dropped and counted
// (Stats.Torn), never delivered, and the records after them are kept.
//
// [QueueOf] and [ConnOf] are typed views of a Queue or a Conn: they encode values
// with a [Codec] ([CBOR] by default, or [JSON] or [Raw]).
//
// # Guarantees
//
//   - Every message a Put reported as written is received by exactly one Get,
//     unless the queue file is removed and every process closes it; with
//     Receive, it is delivered until a delivery is acknowledged (at least
//     once).
//   - Messages put by one goroutine are received in the order it put them.
//   - A process killed at any instant, even inside Put or Get, loses nothing
//     that was committed and wedges nobody: the other processes notice within
//     milliseconds (each attached process holds a kernel file lock that dies
//     with it) and take over. A message whose Put was cut short is never
//     delivered; a message whose Get was cut short stays in the queue for
//     the next consumer.
//   - Put either returns an error or has written the message: nothing is
//     buffered in a background goroutine.
//   - A file that is not a queue, or a damaged one, yields [ErrIncompatible]
//     or [ErrCorrupt], never a panic, an out-of-range access or a hang.
//   - A queue never kills its process. Every queue file (named, anonymous,
//     durable, a Conn's rings) is reserved whole before any other process
//     can see it, so a full file system, quota or memory cgroup fails the
//     call that makes the queue with [ErrNoSpace], never a later Put with
//     SIGBUS; a file that is not fully backed (copied sparse, made by an
//     older version) is backed when it is opened, or refused with
//     ErrNoSpace. If the mapping faults anyway (another process truncated
//     the file, or punched a page out of it on a full tmpfs), the call gets
//     [ErrCorrupt], the handle refuses further use and lets go of the locks
//     it held, and the process and its other queues go on.
//   - A limit of the system is a named error whose message says what and
//     how to fix it, and the call that met it leaves nothing behind:
//     [ErrNoSpace], [ErrTooManyFiles], [ErrNoMemory], [ErrReadOnly],
//     [ErrTooManyProcesses], and [io/fs.ErrPermission].
//   - A Conn's Recv returns what the peer sent and then io.EOF when the peer
//     closes its end or dies, however it dies; Send then fails with
//     [ErrPeerClosed]. A message the peer was still sending when it died is
//     dropped, never delivered in part.
//   - A typed Put or Send encodes before it returns: an encoding error is
//     its result ([ErrEncode]), never reported later. A message that does not
//     decode gives [ErrDecode] and the next Get goes on with the next one.
//
// # Other backends
//
// [MessageQueue] names the calls a program needs of any queue: Put, TryPut,
// Get, TryGet, Receive, TryReceive, Len, Seal and Close. [*Queue] has them,
// and so does the queue of package github.com/mpq-go/mpq/natsq, which puts the same queue on
// NATS JetStream for producers and consumers on several machines. [OpenURL]
// opens either by URL, so one program switches by configuration:
//
//	q, err := mpq.OpenURL(ctx, "shm:jobs")                   // this package
//	q, err := mpq.OpenURL(ctx, "nats://127.0.0.1:4222/jobs") // with import _ "github.com/mpq-go/mpq/natsq"
//
// Backends register their schemes with [RegisterScheme] when imported, as
// database/sql drivers do, so this module never depends on NATS.
//
// # Caveats
//
//   - Queue messages are byte slices; use [QueueOf] for values.
//   - A Conn end belongs to one process at a time. A process that hands an
//     end to a child should close its own copy, or the peer sees no EOF when
//     the child dies (as with Python's Pipe and Unix pipes).
//   - Listen and Dial check the peer's user id; processes of other users
//     are turned away unless listed in AllowUIDs. Without a Key, any process
//     of an allowed user may connect.
//   - Producers copy their messages into the ring one at a time (under a lock
//     that only producers take), and so do consumers: a producer stopped in
//     the middle of a copy (SIGSTOP, a debugger) delays other producers, not
//     consumers. A killed one delays them by at most a few milliseconds.
//   - Len is exact whenever no Put or Get is in progress.
//   - A held delivery keeps its ring space, and that of every message put
//     after it, until it is acknowledged: the ring is reclaimed in order. At
//     most [MaxInFlight] deliveries are held or given back at once.
//   - A queue file shrunk by another process while mapped costs that queue
//     (ErrCorrupt for every handle on it) though not the process. Keep queue
//     directories private; the default one is.
//   - A queue in memory (tmpfs, memfd) takes its whole size in memory when it
//     is made, counted against the memory cgroup of the process that makes
//     it. Creating a 1 GiB queue takes as long as the kernel needs to
//     allocate and zero 1 GiB (a few hundred milliseconds).
//   - At most 256 processes can be attached to one queue at once.
//   - The file format is that of the machine: queues are not portable
//     between architectures.
//
// # Platform support
//
// Linux is the first-class platform: futexes for waiting, memfd for anonymous
// queues and open-file-description locks (F_OFD_SETLK) for liveness. Other
// Unix systems build and work with fallbacks: waiters poll every 200µs
// instead of sleeping on a futex, anonymous queues are unlinked temporary
// files, and liveness uses process-associated POSIX locks. A process loses
// those locks when it closes any descriptor of the queue file, after which
// the others may take it for dead. So there: open each queue once per
// process, and keep the descriptors from [Queue.File] and those given to
// [OpenFile] open until the queue is closed.
//
// Reserving a queue's storage: on Linux with fallocate, which allocates
// without writing and can back a file in use; before that, a queue of
// memory (tmpfs or memfd) is checked against the memory cgroup's limit and
// the memory available, because there the kernel answers an allocation it
// cannot make with the OOM killer rather than an error. Elsewhere, and on
// Linux file systems without fallocate, a new queue file is written with
// zeros before it is published (slower for large queues), and an existing
// sparse file cannot be backed safely while in use: it is opened as it is
// (Stats.Backed says so). [StatFS] describes the file system of a queue
// directory on Linux, macOS and FreeBSD.
package mpq
