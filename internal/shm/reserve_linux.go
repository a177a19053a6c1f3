//go:build linux

package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// allocChunk bounds one fallocate call: tmpfs undoes a whole call that a
// signal interrupts, so a call must be short enough to finish between two.
const allocChunk = 64 << 20

// allocate reserves the first size bytes of f with fallocate, which
// allocates without changing a byte.
func allocate(f *os.File, size int64) error {
	for off := int64(0); off < size; {
		n := min(size-off, allocChunk)
		err := unix.Fallocate(int(f.Fd()), 0, off, n)
		switch err {
		case nil:
			off += n
		case unix.EINTR:
		case unix.EOPNOTSUPP, unix.ENOSYS: // a file system without it; a sandbox that forbids it
			return fmt.Errorf("fallocate: %w", errors.ErrUnsupported)
		default:
			return err
		}
	}
	return nil
}

// StatFS describes the file system holding dir.
func StatFS(dir string) (FS, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return FS{Dir: dir}, err
	}
	var sst unix.Stat_t
	if err := unix.Stat(dir, &sst); err != nil {
		return FS{Dir: dir}, err
	}
	return fsOf(dir, &st, sst.Dev), nil
}

// fsOf describes the file system of dir, whose statfs is st and device dev
// (0 if unknown).
func fsOf(dir string, st *unix.Statfs_t, dev uint64) FS {
	fs := FS{Dir: dir, Size: int64(st.Blocks) * st.Bsize, Free: int64(st.Bavail) * st.Bsize}
	if dir == Memory {
		fs.Type = "memfd"
		return fs
	}
	fs.Mount, fs.Type = mountOf(dir, dev)
	if fs.Type == "" {
		fs.Type = magicNames[int64(st.Type)]
	}
	return fs
}

var magicNames = map[int64]string{
	unix.TMPFS_MAGIC: "tmpfs", unix.RAMFS_MAGIC: "ramfs", unix.EXT4_SUPER_MAGIC: "ext4",
	unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs", unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	unix.NFS_SUPER_MAGIC: "nfs", unix.F2FS_SUPER_MAGIC: "f2fs", unix.FUSE_SUPER_MAGIC: "fuse",
}

// mountOf finds the mount point and type of the file system holding dir,
// whose device number is dev (0 if unknown), in /proc/self/mountinfo: among
// the mounts of that device, the one whose point is the longest prefix of
// dir (or the first, for a dir that is no path: a descriptor's).
func mountOf(dir string, dev uint64) (mount, typ string) {
	abs := ""
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		abs, _ = filepath.Abs(dir)
		if p, err := filepath.EvalSymlinks(abs); err == nil {
			abs = p
		}
	}
	data, err := readSmall("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	best := -1
	for _, line := range strings.Split(string(data), "\n") {
		// id parent major:minor root point options [optional...] - type source super
		pre, post, ok := strings.Cut(line, " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 1 {
			continue
		}
		if dev != 0 && fields[2] != fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)) {
			continue
		}
		point := unescapeMount(fields[4])
		score := 0
		if abs != "" && within(abs, point) {
			score = len(point) + 1
		} else if dev == 0 {
			continue
		}
		if score > best {
			best, mount, typ = score, point, tail[0]
		}
	}
	return mount, typ
}

// readSmall reads a small file of the kernel's (/proc, /sys) with plain
// system calls: os.Open may be a process's first use of the runtime's
// poller, whose setup throws, killing the process, when no descriptor is
// left for it.
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			out = append(out, buf[:n]...)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return out, err
		}
	}
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkMemory refuses the storage s asks for in a file in memory (tmpfs,
// ramfs, memfd) that the memory cgroup of this process or the machine
// cannot hold: the kernel would answer the allocation there not with an
// error but by killing a process of the cgroup (the OOM killer).
func checkMemory(s space) error {
	var st unix.Statfs_t
	if unix.Fstatfs(int(s.file.Fd()), &st) != nil || st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC {
		return nil
	}
	fixes := []string{"raise the memory limit (docker run --memory, MemoryMax= in a systemd unit)"}
	if s.dir != Memory {
		fixes = append(fixes, "set Options.Dir (mpq --dir) to a directory on disk")
	}
	if cg, limit, used, ok := memoryCgroup(); ok && s.need > limit-used {
		return s.noSpace(unix.ENOSPC, fileFS(s.file, s.dir), fmt.Sprintf(
			"the memory cgroup %s of this process allows %s and %s of it is in use, and a queue in memory (tmpfs, memfd) counts against it",
			cg, Bytes(limit), Bytes(used)), fixes...)
	}
	if avail, ok := memAvailable(); ok && s.need > avail {
		return s.noSpace(unix.ENOSPC, fileFS(s.file, s.dir), fmt.Sprintf("the machine has %s of memory and swap available", Bytes(avail)), fixes...)
	}
	return nil
}

// cgroupRoots are where the memory controller is mounted: cgroup v2's
// unified hierarchy, and v1's memory hierarchy.
var cgroupRoots = struct{ v2, v1 string }{"/sys/fs/cgroup", "/sys/fs/cgroup/memory"}

// memoryCgroup finds the tightest memory limit of this process's cgroup
// and its ancestors: the cgroup, its limit, and the memory charged to it
// that cannot be reclaimed at once (usage less the page cache of files,
// which does not hold tmpfs pages: those are on the lists of anonymous
// memory). If it cannot read what it needs, it reports no limit.
func memoryCgroup() (cg string, limit, used int64, ok bool) {
	data, err := readSmall("/proc/self/cgroup")
	if err != nil {
		return "", 0, 0, false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var root, maxFile, curFile string
		var cache []string
		switch {
		case parts[0] == "0" && parts[1] == "":
			root, maxFile, curFile = cgroupRoots.v2, "memory.max", "memory.current"
			cache = []string{"active_file", "inactive_file"}
		case hasController(parts[1], "memory"):
			root, maxFile, curFile = cgroupRoots.v1, "memory.limit_in_bytes", "memory.usage_in_bytes"
			cache = []string{"total_active_file", "total_inactive_file"}
		default:
			continue
		}
		for p := parts[2]; ; p = filepath.Dir(p) {
			dir := filepath.Join(root, p)
			l, lok := readInt(filepath.Join(dir, maxFile))
			u, uok := readInt(filepath.Join(dir, curFile))
			if lok && uok && l < 1<<62 {
				u = max(0, u-statSum(filepath.Join(dir, "memory.stat"), " ", cache...))
				if !ok || l-u < limit-used {
					cg, limit, used, ok = p, l, u, true
				}
			}
			if p == "/" || p == "." {
				break
			}
		}
	}
	return cg, limit, used, ok
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readInt reads a file holding one integer ("max" is no limit).
func readInt(path string) (int64, bool) {
	data, err := readSmall(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	return n, err == nil
}

// statSum sums the values of keys in a file of "key<sep>value" lines; ok
// is false if it cannot read the file.
func statSum(path, sep string, keys ...string) int64 {
	n, _ := statSumOK(path, sep, keys...)
	return n
}

func statSumOK(path, sep string, keys ...string) (sum int64, ok bool) {
	data, err := readSmall(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, sep)
		if slices.Contains(keys, k) {
			v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, false
			}
			if strings.HasSuffix(line, " kB") {
				n <<= 10
			}
			sum += n
		}
	}
	return sum, true
}

// memAvailable is the memory and swap the machine can still give.
func memAvailable() (int64, bool) {
	return statSumOK("/proc/meminfo", ":", "MemAvailable", "SwapFree")
}

// fileFS describes the file system of f, a file in dir (which may be no
// path, but what a descriptor is, for a queue opened by descriptor).
func fileFS(f *os.File, dir string) FS {
	var st unix.Statfs_t
	var sst unix.Stat_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil || unix.Fstat(int(f.Fd()), &sst) != nil {
		return FS{Dir: dir}
	}
	return fsOf(dir, &st, sst.Dev)
}
