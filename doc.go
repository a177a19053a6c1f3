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
//   - A user who may only read a queue reads it and nothing more: it cannot
//     block, take from or change it. A stranger cannot reach it, nor make
//     this process follow another user's symbolic link. A writer that damages
//     it makes every call fail with [ErrCorrupt], never hang. A stalled peer
//     holds up others only within their contexts, and delays no listener's
//     handshakes. Security, below, says who can do what, exactly.
//
// # Security
//
// Who may do what to a named queue is decided by the permissions of its
// file and its directory; to a listener, by [ListenOptions].AllowUIDs and
// Key. Each line below is tested with the other party as a real process,
// of another user where it matters.
//
// A named queue:
//   - A writer (a user who may write the queue file) is trusted with the
//     queue: it can put, take, seal and remove, and it can damage it. Damage
//     makes nobody hang: the first process to read it records it in the
//     file and wakes every waiter, and from then on every call in every
//     process fails with [ErrCorrupt], saying what was found and how to fix
//     it, until a durable queue is recovered (closed everywhere and opened
//     again) or the queue is removed. [Stats].Corrupt and mpq stat say so.
//   - A reader (read permission alone, such as Mode 0640 for a group that
//     monitors) can read every message in the file and [Inspect] the queue,
//     and nothing else: it can neither take, put, seal nor change anything,
//     nor block a writer. Attached processes show that they are alive with
//     locks on the queue's lock file, .mpq-ID.lock, which only the
//     queue's writers may open; the read locks a reader may take on the
//     queue file stop nobody.
//   - A stranger (neither) can do nothing to it, nor make this process
//     create, open or remove files elsewhere: a queue directory reached
//     through a symbolic link of another user, owned by another user, or on
//     a path through a directory everyone may write to without the sticky
//     bit is refused with [ErrUnsafeDir], and a queue file that is a
//     symbolic link is never opened ([Remove] removes the link itself).
//     Whoever may write the directory may still remove queue files in it,
//     or make one under a name first: use a directory only you can write
//     to, as the default one is.
//   - A writer stopped (SIGSTOP, a debugger) while it holds the producers'
//     lock holds up other Puts, each until its context ends, and Seal until
//     it goes on or dies; holding the consumers' lock, other Gets; holding
//     the open lock (while it opens, recovers or removes the queue with
//     [RemoveIf]), Opens: [OpenContext] waits as long as its context says,
//     [Open] [OpenWait]. A killed one holds up nobody for more than a few
//     milliseconds.
//
// A listener ([Listen]):
//   - A user not in AllowUIDs cannot connect: without AllowUIDs the socket
//     file is mode 0600; with it the socket is 0666 and such a peer is
//     turned away with [ErrPeerRejected] before any handshake.
//   - An allowed user without the Key fails with [ErrAuth] and never gets a
//     ring descriptor, even by relaying a real dialer's handshake: the MACs
//     bind both processes' pids and uids and the socket file. Across pid
//     namespaces only the socket file is bound, so keep the socket in a
//     directory only trusted users can write. Without a Key, any process of
//     an allowed user connects.
//   - A stalled peer (silent, or stopped in mid-handshake) delays nobody:
//     handshakes run concurrently, at most MaxHandshakes at once (the oldest
//     is dropped to admit a new peer), each cut off after HandshakeTimeout.
//   - Two Listens of one stale name never remove each other's socket.
//
// An anonymous queue and a Conn's rings reach only the processes that are
// handed their descriptors.
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
// # Packages and modules
//
// This module, github.com/mpq-go/mpq, holds this package, package proc
// (a registered Go function run as a child process, with queues, conns and
// values as arguments) and package examples (the programs of the
// repository's examples and of mpq demo). The NATS backend,
// github.com/mpq-go/mpq/natsq, and the mpq command,
// github.com/mpq-go/mpq/cmd/mpq, are modules of their own, released with
// this one under the same version, so that neither's dependencies become
// this module's:
//
//	go get github.com/mpq-go/mpq@latest
//	go install github.com/mpq-go/mpq/cmd/mpq@latest
//
// # Caveats
//
//   - Queue messages are byte slices; use [QueueOf] for values.
//   - A Conn end belongs to one process at a time. A process that hands an
//     end to a child should close its own copy, or the peer sees no EOF when
//     the child dies (as with Python's Pipe and Unix pipes).
//   - Listen and Dial check the peer's user id; processes of other users
//     are turned away unless listed in AllowUIDs, and the socket's
//     directory must let them through (Listen says which one does not).
//     Without a Key, any process of an allowed user may connect.
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
// files (whose Options.Label is accepted and not visible: Stats.Label is
// "", and mpq ls does not find them), and liveness uses process-associated
// POSIX locks. A process loses
// those locks when it closes any descriptor of the queue file, after which
// the others may take it for dead. So there: open each queue once per
// process, and keep the descriptors from [Queue.File] and those given to
// [OpenFile] open until the queue is closed. Named queues there keep those
// locks in the queue file (OpenFile could not find a lock file from a
// descriptor), so a user who may read a queue can wedge it: give read
// permission only to those who may write.
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
