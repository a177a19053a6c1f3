//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq"
)

// durableTransport links processes with one named durable queue, made for
// each run in a new directory under os.TempDir (which must be on a disk
// filesystem, not tmpfs): Options{Dir, Durable: true, Sync} with Sync
// SyncEveryPut if every is 0, SyncEvery(every) if it is positive and
// SyncNever if it is negative. Every process opens the queue by name; the
// descriptor a child inherits is the directory, whose path it reads back
// from /proc/self/fd. Producers Put and consumers AppendGet into a reused
// buffer, as with [mpqTransport]. It carries one way only: it serves
// throughput rows.
type durableTransport struct{ every time.Duration }

// durableName is the name of the queue in its directory.
const durableName = "bench"

// policy returns the queue's Sync.
func (t durableTransport) policy() mpq.SyncPolicy {
	switch {
	case t.every > 0:
		return mpq.SyncEvery(t.every)
	case t.every < 0:
		return mpq.SyncNever
	}
	return mpq.SyncEveryPut
}

// options returns the Options of a handle on the queue in dir, with Spin
// from spinEnv if set.
func (t durableTransport) options(dir string) (*mpq.Options, error) {
	o, err := options()
	if err != nil {
		return nil, err
	}
	if o == nil {
		o = &mpq.Options{}
	}
	o.Dir, o.Durable, o.Sync = dir, true, t.policy()
	return o, nil
}

// link makes a new directory and the queue in it, and keeps only the
// directory open: side a and side b are both that one file. The queue
// lives in its file until link.close removes the directory.
func (t durableTransport) link(bool) (*link, error) {
	dir, err := os.MkdirTemp("", "mpq-bench-durable-")
	if err != nil {
		return nil, err
	}
	if err := onDisk(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts, err := t.options(dir)
	var q *mpq.Queue
	if err == nil {
		q, err = mpq.Create(durableName, opts)
	}
	var d *os.File
	if err == nil {
		d, err = os.Open(dir)
		err = errors.Join(err, q.Close())
	}
	if err != nil {
		if d != nil {
			d.Close()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	return &link{a: []*os.File{d}, b: []*os.File{d}, files: []*os.File{d}, dir: dir}, nil
}

// open opens the queue in the directory files[0] by name, used both ways.
// It borrows the file only to find the directory's path.
func (t durableTransport) open(files []*os.File) (*ends, error) {
	if len(files) != 1 || files[0] == nil {
		return nil, fmt.Errorf("durable side has %d files; want 1", len(files))
	}
	dir, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(files[0].Fd())))
	if err != nil {
		return nil, fmt.Errorf("durable queue directory: %w", err)
	}
	opts, err := t.options(dir)
	if err != nil {
		return nil, err
	}
	opts.NoCreate = true
	q, err := mpq.Open(durableName, opts)
	if err != nil {
		return nil, err
	}
	e := &mpqEnd{q: q}
	return &ends{in: e, out: e, close: q.Close}, nil
}

// durableConfig describes the durable queues for the table.
func durableConfig() string {
	return fmt.Sprintf("durable: a named queue (4 MiB ring) per run in a new directory under %s (%s), "+
		"Options{Dir, Durable: true, Sync: per contender}, opened by name in every process", os.TempDir(), fsType(os.TempDir()))
}

// onDisk returns an error if dir is on tmpfs or ramfs: durable queues are
// measured on a disk.
func onDisk(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		return fmt.Errorf("durable queues need a directory on disk, and %s is in memory (set TMPDIR)", filepath.Dir(dir))
	}
	return nil
}

// fsType names the filesystem of dir.
func fsType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "filesystem unknown: " + err.Error()
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	}
	return fmt.Sprintf("filesystem 0x%x", st.Type)
}
