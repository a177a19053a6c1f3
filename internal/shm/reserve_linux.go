//go:build linux

package shm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
		case unix.EOPNOTSUPP:
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
	fs := fsOf(dir, &st)
	fs.Dir = dir
	return fs, nil
}

// fsOf describes the file system of dir, whose statfs is st.
func fsOf(dir string, st *unix.Statfs_t) FS {
	fs := FS{Size: int64(st.Blocks) * st.Bsize, Free: int64(st.Bavail) * st.Bsize}
	if dir == Memory {
		fs.Type = "memfd"
		return fs
	}
	fs.Mount, fs.Type = mountOf(dir)
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

// mountOf finds the mount point and type of the file system holding dir in
// /proc/self/mountinfo: the mount whose point is the longest prefix of dir.
func mountOf(dir string) (mount, typ string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", ""
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		// id parent major:minor root point options [optional...] - type source super
		pre, post, ok := strings.Cut(line, " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 1 {
			continue
		}
		point := unescapeMount(fields[4])
		if within(abs, point) && len(point) >= len(mount) {
			mount, typ = point, tail[0]
		}
	}
	return mount, typ
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

// checkMemory refuses size bytes of f, a file in memory (tmpfs or memfd),
// that the memory cgroup of this process or the machine cannot hold: the
// kernel would answer fallocate there not with an error but by killing a
// process of the cgroup (the OOM killer).
func checkMemory(f *os.File, size int64, dir string) error {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil || st.Type != unix.TMPFS_MAGIC {
		return nil
	}
	if cg, limit, used, ok := memoryCgroup(); ok && size > limit-used {
		return noSpace(unix.ENOSPC, size, fileFS(f, dir), fmt.Sprintf(
			"the memory cgroup %s of this process allows %s and %s of it is in use, and a queue in memory (tmpfs, memfd) counts against it",
			cg, Bytes(limit), Bytes(used)))
	}
	if avail, ok := memAvailable(); ok && size > avail {
		return noSpace(unix.ENOSPC, size, fileFS(f, dir), fmt.Sprintf("the machine has %s of memory and swap available", Bytes(avail)))
	}
	return nil
}

// cgroupRoots are where the memory controller is mounted: cgroup v2's
// unified hierarchy, and v1's memory hierarchy.
var cgroupRoots = struct{ v2, v1 string }{"/sys/fs/cgroup", "/sys/fs/cgroup/memory"}

// memoryCgroup finds the tightest memory limit of this process's cgroup
// and its ancestors: the cgroup, its limit, and the memory charged to it
// that cannot be reclaimed at once (usage less inactive page cache).
func memoryCgroup() (cg string, limit, used int64, ok bool) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", 0, 0, false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var root, maxFile, curFile, inactive string
		switch {
		case parts[0] == "0" && parts[1] == "":
			root, maxFile, curFile, inactive = cgroupRoots.v2, "memory.max", "memory.current", "inactive_file"
		case hasController(parts[1], "memory"):
			root, maxFile, curFile, inactive = cgroupRoots.v1, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
		default:
			continue
		}
		for p := parts[2]; ; p = filepath.Dir(p) {
			dir := filepath.Join(root, p)
			l, lok := readInt(filepath.Join(dir, maxFile))
			u, uok := readInt(filepath.Join(dir, curFile))
			if lok && uok && l < 1<<62 {
				u = max(0, u-statValue(filepath.Join(dir, "memory.stat"), inactive))
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
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	return n, err == nil
}

// statValue reads the value of key in a "key value" file, or 0.
func statValue(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// memAvailable is the memory and swap the machine can still give.
func memAvailable() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var total int64
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == "MemAvailable" || k == "SwapFree" {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, false
			}
			total += kb << 10
			found = found || k == "MemAvailable"
		}
	}
	return total, found
}

// fileFS describes the file system of f, a file in dir.
func fileFS(f *os.File, dir string) FS {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return FS{Dir: dir}
	}
	fs := fsOf(dir, &st)
	fs.Dir = dir
	return fs
}

// addrSpace is the address-space limit for an error message.
func addrSpace() string {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_AS, &rl) != nil {
		return "unknown"
	}
	if rl.Cur == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes", rl.Cur)
}
