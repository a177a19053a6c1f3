package mpq

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// Options configure how a queue is opened or created. A nil *Options means
// all defaults. Capacity, MaxMessage, Mode, Durable, MaxDeliveries and
// DeadLetter apply only when a queue is created: an existing queue keeps
// what its file records. Spin, Lease and Sync apply to the handle opened.
type Options struct {
	// Dir is the directory of named queues. The default, "", is a per-user
	// directory on tmpfs: $XDG_RUNTIME_DIR/mpq if XDG_RUNTIME_DIR is set,
	// else /dev/shm/mpq-UID. It is created with mode 0700, and an existing
	// default directory must be owned by the user and closed to others.
	//
	// Any Dir, given or default, is walked one component at a time, never
	// following a symbolic link by name, and refused with [ErrUnsafeDir]
	// (which also matches fs.ErrPermission) if another user could redirect
	// it or fill it:
	//   - a symbolic link on the way is followed only if it is owned by
	//     this user (the effective uid) or root;
	//   - the directory itself must be owned by this user or root;
	//   - no directory on the way, nor Dir itself, may be writable by
	//     every user without the sticky bit (as /tmp has).
	//
	// Missing directories are created (mode 0700) by the same walk, and
	// queue files are opened, created and removed relative to the
	// directory found, never following a symbolic link: a queue file that
	// is one is refused by Open and removed (the link, not its target) by
	// [Remove]. Not checked: directories on the way that belong to other
	// users (their owner can move where the path leads, but only to a
	// directory that passes these checks), group write permission (members
	// of the group are trusted as the owner is), and the owner and mode of
	// the queue files themselves: in a directory that others may write to
	// (a sticky one, or a group one), another user can make a queue file
	// under a name before you do, which Open then opens.
	Dir string

	// Capacity is the size of the ring in bytes, rounded up to a power of
	// two, at least 4 KiB and at most 1 TiB. Every message takes its length
	// rounded up to 8 bytes, plus an 8-byte header. Default 4 MiB.
	Capacity int

	// MaxMessage is the largest message the queue accepts, at most
	// Capacity/2 - 8 (so that it fits wherever the ring's positions stand;
	// Capacity/2 - 16 if Durable) and at most 4 GiB - 1. Default
	// Capacity/4, or 4 GiB - 1 for a Capacity of 16 GiB or more.
	MaxMessage int

	// Mode holds the permission bits of a new queue file. Default 0600.
	// Users given read permission alone may read the messages and Inspect
	// the queue (mpq stat) but neither take nor alter anything: the queue's
	// processes show that they are alive with locks on its lock file,
	// .mpq-ID.lock beside it, whose mode gives read and write to each
	// class of users that Mode lets write and nothing to the others, so a
	// reader cannot lock it. See Security in the package documentation.
	Mode os.FileMode

	// NoCreate makes Open fail with an error wrapping fs.ErrNotExist
	// instead of creating a missing queue.
	NoCreate bool

	// Spin is how long a blocked Put or Get polls the queue before it
	// sleeps in the kernel. Spinning trades CPU for latency: it is what
	// makes a round trip take microseconds. Default 50µs; negative means
	// do not spin.
	Spin time.Duration

	// Durable makes a new named queue survive the machine stopping: each
	// record carries a CRC32C, the file is flushed to disk as Sync says, and
	// the first process to open the queue after a crash recovers it,
	// dropping (and counting in Stats.Torn) records that did not reach the
	// disk whole. Dir must be on a disk filesystem, not tmpfs. Records of a
	// durable queue take a 16-byte header and are aligned to 16 bytes.
	Durable bool

	// Sync says when Puts on a durable queue reach the disk: SyncEveryPut
	// (the default: Put returns once its message is on disk), SyncEvery(d)
	// (a background flush at most d after a Put), or SyncNever (the
	// operating system's write-back, and Queue.Sync). It applies to this
	// handle's Puts.
	Sync SyncPolicy

	// Lease is how long a delivery from Receive stays with its consumer
	// before the message is given back for another delivery, unless the
	// consumer acknowledges it or calls Extend. It applies to this handle's
	// Receives. Default 30s; at most [MaxLease].
	Lease time.Duration

	// MaxDeliveries, if positive, is how many times Receive delivers a
	// message. A message given back after that many deliveries goes to the
	// DeadLetter queue (or, with no DeadLetter, is dropped), and counts in
	// Stats.DeadLettered. Recorded when the queue is created.
	MaxDeliveries int

	// DeadLetter names the queue that takes messages past MaxDeliveries. It
	// lives in the same directory, and is created (with this queue's
	// capacity, maximum message size and durability) if missing. Recorded
	// when the queue is created.
	DeadLetter string

	// Label names an anonymous queue made by [New] for those who look at
	// it from outside, such as "pool square: tasks": mpq ls, top and stat
	// show it, and [Stats].Label holds it. On Linux it is the name of the
	// queue's memfd, "mpq:" + Label (an unlabelled queue's is "mpq"), which
	// /proc/PID/fd shows; on other systems it is accepted and not visible
	// (Stats.Label is ""). At most [MaxLabel] bytes of valid UTF-8, without
	// control characters or '/'. Default "": no label. A named queue's name
	// is its label: Open and Create refuse a Label, with ErrInvalidOptions;
	// OpenFile and Inspect check it and ignore it.
	Label string
}

// MaxLabel is the longest Options.Label, in bytes.
const MaxLabel = 200

const (
	defaultCapacity = 4 << 20
	defaultSpin     = 50 * time.Microsecond
	defaultLease    = 30 * time.Second
)

// settings are Options validated and filled with defaults.
type settings struct {
	dir      string
	private  bool
	geometry ring.Geometry
	mode     os.FileMode
	noCreate bool
	spin     time.Duration
	lease    time.Duration
	sync     SyncPolicy
	label    string
}

func (o *Options) settings() (settings, error) {
	var s settings
	if o == nil {
		o = &Options{}
	}
	if o.Capacity < 0 || o.MaxMessage < 0 {
		return s, fmt.Errorf("%w: negative Capacity %d or MaxMessage %d", ErrInvalidOptions, o.Capacity, o.MaxMessage)
	}
	if o.Lease > MaxLease {
		return s, fmt.Errorf("%w: Lease %v over MaxLease %v", ErrInvalidOptions, o.Lease, MaxLease)
	}
	if o.Lease < 0 || o.MaxDeliveries < 0 || o.MaxDeliveries > math.MaxUint32 || o.Sync < SyncNever {
		return s, fmt.Errorf("%w: negative Lease %v or MaxDeliveries %d, or Sync %d", ErrInvalidOptions, o.Lease, o.MaxDeliveries, o.Sync)
	}
	if o.DeadLetter != "" {
		if err := shm.CheckName(o.DeadLetter); err != nil {
			return s, fmt.Errorf("%w: DeadLetter: %w", ErrInvalidOptions, err)
		}
	}
	if err := checkLabel(o.Label); err != nil {
		return s, err
	}
	if o.Mode&^os.ModePerm != 0 {
		return s, fmt.Errorf("%w: Mode %v has bits other than permissions", ErrInvalidOptions, o.Mode)
	}
	c := uint64(defaultCapacity)
	if o.Capacity > 0 {
		if uint64(o.Capacity) > ring.MaxCapacity {
			return s, fmt.Errorf("%w: Capacity %d over %d", ErrInvalidOptions, o.Capacity, uint64(ring.MaxCapacity))
		}
		c = ring.MinCapacity
		for c < uint64(o.Capacity) {
			c <<= 1
		}
	}
	m := min(c/4, ring.MaxMessageFor(c, o.Durable))
	if o.MaxMessage > 0 {
		m = uint64(o.MaxMessage)
	}
	if m > ring.MaxMessageFor(c, o.Durable) {
		return s, fmt.Errorf("%w: MaxMessage %d over %d, the most a queue of Capacity %d takes (Capacity/2 - 8, or - 16 if durable; at most 4 GiB - 1)", ErrInvalidOptions, m, ring.MaxMessageFor(c, o.Durable), c)
	}
	s.geometry = ring.Geometry{Capacity: c, MaxMessage: m, Durable: o.Durable,
		MaxDeliveries: uint32(o.MaxDeliveries), DeadLetter: o.DeadLetter}
	s.dir, s.private = o.Dir, false
	if s.dir == "" {
		s.dir, s.private = shm.DefaultDir(), true
	}
	s.mode = o.Mode
	if s.mode == 0 {
		s.mode = 0o600
	}
	s.noCreate = o.NoCreate
	s.spin = o.Spin
	if s.spin == 0 {
		s.spin = defaultSpin
	}
	s.lease = o.Lease
	if s.lease == 0 {
		s.lease = defaultLease
	}
	s.sync = o.Sync
	s.label = o.Label
	return s, nil
}

// checkLabel refuses a Label that could not name a memfd, or that would
// garble the lines of mpq ls and top.
func checkLabel(label string) error {
	const fix = "give a short printable text, such as \"pool square: tasks\""
	switch {
	case len(label) > MaxLabel:
		return fmt.Errorf("%w: Label of %d bytes is longer than MaxLabel (%d): %s", ErrInvalidOptions, len(label), MaxLabel, fix)
	case !utf8.ValidString(label):
		return fmt.Errorf("%w: Label %q is not valid UTF-8: %s", ErrInvalidOptions, label, fix)
	case strings.ContainsRune(label, '/'):
		return fmt.Errorf("%w: Label %q contains '/': %s", ErrInvalidOptions, label, fix)
	case strings.IndexFunc(label, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: Label %q contains a control character: %s", ErrInvalidOptions, label, fix)
	}
	return nil
}
