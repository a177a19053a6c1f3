package mpq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mpq-go/mpq/internal/liveness"
	"github.com/mpq-go/mpq/internal/ring"
	"github.com/mpq-go/mpq/internal/shm"
)

// A named queue's processes prove that they are alive with locks on a lock
// file beside the queue file, .mpq-ID.lock, rather than on the queue
// file itself. Anyone who may read a file may take read locks on it, and a
// read lock on a byte keeps everyone else from locking it for writing: a
// process that could only read the queue could then keep every process
// from attaching, take every free slot, or make a dead lock holder look
// alive. The lock file is open only to the users who may write the queue
// (read and write for each class of users with write permission on the
// queue file, nothing for the others), so a reader cannot lock it. ID, a
// random number in the queue's header, tells this queue's lock file from
// those of other queues, so a queue made while another of the same name is
// being removed never shares its locks. The lock file records the inode
// of its queue file, so that a copy of the queue file (which has the same
// id) is not taken for the queue while the original is in use.
//
// An anonymous queue has no readers besides the processes it was handed
// to: its locks stay in its file. So do those of named queues on systems
// other than Linux, where a descriptor's path cannot be found (see
// lockFiles).

// lockPath is the path of the lock file of the queue file at path. It is
// named after the queue's id alone, so that the queue file keeps its lock
// file when it is renamed, or linked under another name, in its directory.
func lockPath(path string, id uint32) string {
	return filepath.Join(filepath.Dir(path), fmt.Sprintf(".mpq-%08x.lock", id))
}

// lockMode is the mode of the lock file of a queue file of mode perm.
func lockMode(perm fs.FileMode) fs.FileMode {
	w := perm & 0o222
	return w | w<<1 | 0o600
}

// newLockID picks the id of a new queue's lock file.
func newLockID() uint32 {
	for {
		if id := rand.Uint32(); id != 0 {
			return id
		}
	}
}

// createLockFile makes the lock file of a new queue file at path, of mode
// lockMode(perm), and returns it with the id it took.
func createLockFile(q *os.File, path string, perm fs.FileMode) (*os.File, uint32, error) {
	var qs unix.Stat_t
	if err := unix.Fstat(int(q.Fd()), &qs); err != nil {
		return nil, 0, fmt.Errorf("mpq: examine the new queue file: %w", err)
	}
	d, err := shm.OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, 0, shm.Explain("open the queue's directory", err)
	}
	defer d.Close()
	for {
		id := newLockID()
		f, err := makeLockFile(d, filepath.Base(lockPath(path, id)), lockMode(perm), qs.Ino)
		if errors.Is(err, fs.ErrExist) {
			continue // another queue's, made when this one's id came up
		}
		if err != nil {
			return nil, 0, shm.Explain("make the queue's lock file", err)
		}
		return f, id, nil
	}
}

// makeLockFile makes the lock file name in d, of mode perm, recording the
// inode ino of its queue file. It is written under a temporary name and
// linked into place complete, so that nobody ever sees a lock file without
// its inode; a name that exists gives an error wrapping fs.ErrExist.
func makeLockFile(d *shm.Dir, name string, perm fs.FileMode, ino uint64) (*os.File, error) {
	// Named as the temporary files of queue files are, which mpq gc
	// removes once their process is gone.
	tmp := fmt.Sprintf(".%s.mpq.%d.%x.tmp", strings.TrimPrefix(name, "."), os.Getpid(), rand.Uint64())
	f, err := d.OpenAt(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	defer d.Remove(tmp)
	err = f.Chmod(perm) // whatever the umask
	if err == nil {
		err = writeInode(f, ino)
	}
	if err == nil {
		err = d.Link(tmp, name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openLockFile opens the lock file of the queue file q at path, mapped at
// mem with header g. A missing one is made (for a durable queue copied or
// restored without it; made says so), unless a process the queue's table
// records may still be attached to the queue through a lock file
// elsewhere: the queue file was moved or linked in from another directory
// while in use, and sharing its processes' locks is the only safe way to
// open it. A lock file that is not a regular file, belongs to someone else
// than q's owner, root or this user, or is open to users who may not write
// q is refused: its owner could lock it.
func openLockFile(q *os.File, path string, g ring.Geometry, mem []byte) (lf *os.File, made bool, err error) {
	var qs unix.Stat_t
	if err := unix.Fstat(int(q.Fd()), &qs); err != nil {
		return nil, false, fmt.Errorf("mpq: examine queue file %s: %w", path, err)
	}
	lp := lockPath(path, g.LockID)
	want := lockMode(fs.FileMode(qs.Mode).Perm())
	d, err := shm.OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, false, shm.Explain("open the queue's directory", err)
	}
	defer d.Close()
	name := filepath.Base(lp)
	lf, err = d.OpenAt(name, os.O_RDWR|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if a, ok := stillAttached(mem, &qs); ok {
			// A process attaches only once its lock file is in place:
			// this one may have made it since we looked.
			lf, err = d.OpenAt(name, os.O_RDWR|unix.O_NONBLOCK, 0)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, false, fmt.Errorf("mpq: the lock file %s of queue file %s is missing while process %d, which attached to the queue at %s and has not closed it, still has it mapped: %w: the queue file was moved or linked here from another directory while in use, or its lock file removed; open the queue where it was made, or stop that process first", lp, path, a.PID, a.Since.Format(time.RFC3339), fs.ErrNotExist)
			}
		} else {
			lf, err = makeLockFile(d, name, want, qs.Ino)
			made = err == nil
			if errors.Is(err, fs.ErrExist) { // made by another process meanwhile
				lf, err = d.OpenAt(name, os.O_RDWR|unix.O_NONBLOCK, 0)
			}
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, false, lockPermission(d, name, lp, &qs, err)
		}
		if errors.Is(err, unix.ELOOP) {
			return nil, false, fmt.Errorf("mpq: open the lock file %s: %w: it is a symbolic link, which a queue's lock file never is: remove it (mpq rm removes the queue with it)", lp, fs.ErrPermission)
		}
		return nil, false, shm.Explain("open the queue's lock file "+lp, err)
	}
	err = checkLockFile(lf, lp, &qs, want, made)
	if err == nil && !made {
		err = checkInode(lf, lp, path, qs.Ino)
	}
	if err != nil {
		lf.Close()
		if made {
			d.Remove(name)
		}
		return nil, false, err
	}
	return lf, made, nil
}

// lockPermission explains why the lock file name in d, at lp, of a queue
// file of status qs could not be opened: err, a permission error. The
// queue file itself was opened for writing, so this user may write it.
func lockPermission(d *shm.Dir, name, lp string, qs *unix.Stat_t, err error) error {
	var ls unix.Stat_t
	if d.Stat(name, &ls) == nil && (ls.Uid != qs.Uid || ls.Gid != qs.Gid) {
		return fmt.Errorf("mpq: open the lock file %s: %w: it belongs to uid %d, group %d, and the queue file to uid %d, group %d, whose users may not open it: chown %d:%d %s (or open the queue once as root, which does)", lp, err, ls.Uid, ls.Gid, qs.Uid, qs.Gid, qs.Uid, qs.Gid, lp)
	}
	return fmt.Errorf("mpq: open the lock file %s: %w: it is open only to the users who may write the queue (its processes lock it to show they are alive), and this user (uid %d) may not: open the queue as one of them, or look at it with Inspect (mpq stat), which needs only read access", lp, err, unix.Geteuid())
}

// writeInode records in the lock file lf the inode of its queue file.
func writeInode(lf *os.File, ino uint64) error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], ino)
	_, err := lf.WriteAt(b[:], 0)
	return err
}

// checkInode checks that the lock file lf at lp is the lock file of the
// queue file at path, of inode ino. One that records another inode is of
// a copy of the queue, or of the file this one was restored from: it is
// taken over if no process holds a lock on it, and refused otherwise.
func checkInode(lf *os.File, lp, path string, ino uint64) error {
	// Lock files are made complete (makeLockFile): a short one was cut
	// or emptied, and is no more this queue file's than another's.
	got, err := recordedInode(lf)
	if err == nil && got == ino {
		return nil
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("mpq: read the lock file %s: %w", lp, err)
	}
	if unlocked(lf) {
		return writeInode(lf, ino)
	}
	return fmt.Errorf("mpq: the lock file %s is in use by another queue file of the same id (inode %d, not %d: a copy of %s, or the file it was copied from): %w: only one of them can be open at a time; remove the copy, or close the other first", lp, got, ino, path, fs.ErrExist)
}

// recordedInode is the inode of the queue file that the lock file lf
// records; io.EOF if it records none (it is cut short).
func recordedInode(lf *os.File) (uint64, error) {
	var b [8]byte
	if n, err := lf.ReadAt(b[:], 0); n < len(b) {
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}

// stillAttached returns an attachment the table of mem, the mapping of
// the queue file of status qs, records of a process that may still be
// attached to that file.
func stillAttached(mem []byte, qs *unix.Stat_t) (ring.Attachment, bool) {
	for _, a := range ring.Recorded(mem) {
		if a.PID == os.Getpid() {
			if here.has(fileID{uint64(qs.Dev), qs.Ino}) {
				return a, true
			}
			continue
		}
		if mayUse(a, qs.Ino) {
			return a, true
		}
	}
	return ring.Attachment{}, false
}

// checkLockFile checks the lock file lf at lp of a queue file whose status
// is qs, and gives a lock file this process made, or owns, the mode want
// (and, made by root, the queue's owner).
func checkLockFile(lf *os.File, lp string, qs *unix.Stat_t, want fs.FileMode, made bool) error {
	var ls unix.Stat_t
	if err := unix.Fstat(int(lf.Fd()), &ls); err != nil {
		return fmt.Errorf("mpq: examine the lock file %s: %w", lp, err)
	}
	if ls.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("mpq: the lock file %s is not a regular file: %w: remove it (mpq rm removes the queue with it)", lp, fs.ErrPermission)
	}
	me := uint32(unix.Geteuid())
	if ls.Uid != qs.Uid && ls.Uid != 0 && ls.Uid != me {
		return fmt.Errorf("mpq: the lock file %s belongs to uid %d, not to the queue's owner (uid %d): %w: whoever owns it could keep the queue's processes from attaching; remove it if no process has the queue open, and open the queue again", lp, ls.Uid, qs.Uid, fs.ErrPermission)
	}
	if me == 0 && ls.Uid != qs.Uid {
		// Root made it for a queue of another user's, or the queue file
		// was given to another user since: theirs, so that they can open
		// it.
		if err := lf.Chown(int(qs.Uid), int(qs.Gid)); err != nil {
			return fmt.Errorf("mpq: give the lock file %s to the queue's owner: %w", lp, err)
		}
		ls.Uid, ls.Gid = qs.Uid, qs.Gid
	}
	have := fs.FileMode(ls.Mode).Perm()
	if have&^want == 0 && (have&0o060 == 0 || ls.Gid == qs.Gid) {
		return nil
	}
	if ls.Uid != me && me != 0 {
		return fmt.Errorf("mpq: the lock file %s has mode %04o and group %d, which lets users who may not write the queue (mode %04o, group %d) lock it: %w: chmod it to %04o and chgrp it to %d, or remove it while no process has the queue open", lp, have, ls.Gid, fs.FileMode(qs.Mode).Perm(), qs.Gid, fs.ErrPermission, want, qs.Gid)
	}
	if ls.Gid != qs.Gid {
		if err := lf.Chown(-1, int(qs.Gid)); err != nil {
			return fmt.Errorf("mpq: give the lock file %s the queue file's group %d: %w", lp, qs.Gid, err)
		}
	}
	if err := lf.Chmod(want); err != nil {
		return fmt.Errorf("mpq: set the mode of the lock file %s: %w", lp, err)
	}
	return nil
}

// removeLockFile removes the lock file of the queue file f, which has
// just been removed from path. A file that is not a queue has none.
func removeLockFile(f *os.File, path string) {
	page := make([]byte, ring.PageSize)
	if n, err := f.ReadAt(page, 0); n < len(page) && err != nil {
		return
	}
	if g, err := ring.ReadHeader(page); err == nil && g.LockFile {
		os.Remove(lockPath(path, g.LockID))
	}
}

// errRemoved says that a queue file handed to OpenFile by descriptor is no
// longer linked in its directory.
var errRemoved = fmt.Errorf("%w: the queue was removed: a descriptor of a removed named queue cannot be opened, since new processes could not find its lock file", fs.ErrNotExist)

// lockForRemove takes the open lock of the queue file f at path, waiting
// until ctx is done, for RemoveIf.
func lockForRemove(ctx context.Context, f *os.File, path string) (release func(), err error) {
	// The header and the process table.
	head := make([]byte, ring.EntryOffset)
	if n, err := f.ReadAt(head, 0); n < len(head) {
		return nil, fmt.Errorf("%w: cannot read its header: %v", ErrCorrupt, err)
	}
	g, err := ring.ReadHeader(head)
	if err != nil {
		return nil, err
	}
	if !g.LockFile {
		return liveness.LockOpen(ctx, f, openLockOffset)
	}
	lf, _, err := openLockFile(f, path, g, head)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	return liveness.LockOpen(ctx, lf, openLockOffset)
}

// lockObserver returns the table through which Inspect tests which slots
// of the queue file f, mapped at mem, are held, and what closes it. A user
// who may only read the queue cannot open its lock file: every process
// recorded in its table then counts as alive.
func lockObserver(f *os.File, mem []byte) (lt *liveness.Table, done func()) {
	g, err := ring.ReadHeader(mem)
	if err != nil || !g.LockFile {
		return liveness.Observe(f, ring.MaxProcs, ring.SlotOffset), func() {}
	}
	if path, err := fdPath(f); err == nil {
		lf, err := os.OpenFile(lockPath(path, g.LockID), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err == nil {
			return liveness.Observe(lf, ring.MaxProcs, ring.SlotOffset), func() { lf.Close() }
		}
	}
	return liveness.Observe(nil, ring.MaxProcs, ring.SlotOffset), func() {}
}

// A fileID names a file: its device and inode.
type fileID struct{ dev, ino uint64 }

// fileOf is the fileID of f; zero if it cannot be examined.
func fileOf(f *os.File) fileID {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return fileID{}
	}
	return fileID{uint64(st.Dev), st.Ino}
}

// handlesHere counts the open handles of this process on each file: the
// process's own attachments, which /proc cannot tell from the mapping
// that the attach under way has just made.
type handlesHere struct {
	mu sync.Mutex
	n  map[fileID]int
}

var here = handlesHere{n: map[fileID]int{}}

// add counts d more handles on id.
func (hh *handlesHere) add(id fileID, d int) {
	hh.mu.Lock()
	defer hh.mu.Unlock()
	if hh.n[id] += d; hh.n[id] <= 0 {
		delete(hh.n, id)
	}
}

// has reports whether this process has a handle on id.
func (hh *handlesHere) has(id fileID) bool {
	hh.mu.Lock()
	defer hh.mu.Unlock()
	return hh.n[id] > 0
}

// lockFileOf is the path of the lock file of the queue at path with
// header g; "" if it has none.
func lockFileOf(path string, g ring.Geometry) string {
	if path == "" || !g.LockFile {
		return ""
	}
	return lockPath(path, g.LockID)
}

// lockStillOurs reports whether the lock file lf is still at lp and
// records the inode ino of its queue file.
func lockStillOurs(lf *os.File, lp string, ino uint64) bool {
	if got, err := recordedInode(lf); err != nil || got != ino {
		return false
	}
	fi, err := lf.Stat()
	if err != nil {
		return false
	}
	li, err := os.Lstat(lp)
	return err == nil && os.SameFile(fi, li)
}
