package bwrap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hero-dev/hero/sandbox"
)

const cgroupFS = "/sys/fs/cgroup"

// cgroups manages one cgroup per sandbox under a "hero" parent, in either
// the v1 pids (+ memory) hierarchies or the v2 unified hierarchy.
type cgroups struct {
	v2     bool
	pids   string // parent dir holding the per-sandbox pids cgroups (v2: the only one)
	mem    string // v1 parent dir in the memory hierarchy; "" without memory control
	memory bool
}

func (c *cgroups) describe() string {
	if c.v2 {
		return "v2 " + c.pids
	}
	return "v1 " + c.pids
}

// detectCgroups finds a writable cgroup hierarchy with the pids controller
// and proves it works by creating, limiting and removing a probe cgroup.
func detectCgroups(parent string) (*cgroups, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupFS, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", cgroupFS, err)
	}
	c := &cgroups{}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		ctrl, err := os.ReadFile(filepath.Join(cgroupFS, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		fields := strings.Fields(string(ctrl))
		if !contains(fields, "pids") {
			return nil, errors.New("cgroup v2: pids controller not available")
		}
		c.v2 = true
		c.memory = contains(fields, "memory")
		c.pids = filepath.Join(cgroupFS, parent)
		enable := "+pids"
		if c.memory {
			enable += " +memory"
		}
		if err := os.WriteFile(filepath.Join(cgroupFS, "cgroup.subtree_control"), []byte(enable), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: enable controllers at root: %w", err)
		}
		if err := os.Mkdir(c.pids, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		if err := os.WriteFile(filepath.Join(c.pids, "cgroup.subtree_control"), []byte(enable), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: enable controllers in %s: %w", c.pids, err)
		}
	} else {
		root := filepath.Join(cgroupFS, "pids")
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			return nil, fmt.Errorf("cgroup v1 pids hierarchy: %w", err)
		}
		c.pids = filepath.Join(root, parent)
		if err := os.Mkdir(c.pids, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup v1 pids: %w", err)
		}
		memRoot := filepath.Join(cgroupFS, "memory")
		if _, err := os.Stat(filepath.Join(memRoot, "memory.limit_in_bytes")); err == nil {
			mem := filepath.Join(memRoot, parent)
			if err := os.Mkdir(mem, 0o755); err == nil || errors.Is(err, os.ErrExist) {
				c.mem, c.memory = mem, true
			}
		}
	}
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	probe := "probe-" + hex.EncodeToString(raw[:])
	err := c.create(probe, sandbox.Limits{Processes: 8, MemoryBytes: 64 << 20})
	if rmErr := c.remove(context.Background(), probe); err == nil {
		err = rmErr
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup probe: %w", err)
	}
	return c, nil
}

func (c *cgroups) dirs(id string) []string {
	d := []string{filepath.Join(c.pids, id)}
	if c.mem != "" {
		d = append(d, filepath.Join(c.mem, id))
	}
	return d
}

// create makes the sandbox's cgroup and writes its limits.
func (c *cgroups) create(id string, lim sandbox.Limits) error {
	for _, d := range c.dirs(id) {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	pidsDir := filepath.Join(c.pids, id)
	if lim.Processes > 0 {
		if err := writeFile(pidsDir, "pids.max", strconv.Itoa(lim.Processes)); err != nil {
			return err
		}
	}
	if !c.memory || lim.MemoryBytes <= 0 {
		return nil
	}
	mem := strconv.FormatInt(lim.MemoryBytes, 10)
	if c.v2 {
		if err := writeFile(pidsDir, "memory.max", mem); err != nil {
			return err
		}
		// No swap: otherwise the limit only moves the allocation to swap.
		_ = writeFile(pidsDir, "memory.swap.max", "0")
		return nil
	}
	memDir := filepath.Join(c.mem, id)
	if err := writeFile(memDir, "memory.limit_in_bytes", mem); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(memDir, "memory.memsw.limit_in_bytes")); err == nil {
		_ = writeFile(memDir, "memory.memsw.limit_in_bytes", mem)
	}
	return nil
}

// enter moves pid into the sandbox's cgroup(s).
func (c *cgroups) enter(id string, pid int) error {
	for _, d := range c.dirs(id) {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// oomKills reports how many processes the memory limit has killed so far.
func (c *cgroups) oomKills(id string) int {
	if !c.memory {
		return 0
	}
	var file string
	if c.v2 {
		file = filepath.Join(c.pids, id, "memory.events")
	} else {
		file = filepath.Join(c.mem, id, "memory.oom_control")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// current is the number of processes in the sandbox's cgroup.
func (c *cgroups) current(id string) (int, error) {
	data, err := os.ReadFile(filepath.Join(c.pids, id, "pids.current"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// kill sends SIGKILL to every process in the sandbox's cgroup.
func (c *cgroups) kill(id string) {
	dir := filepath.Join(c.pids, id)
	if c.v2 {
		if writeFile(dir, "cgroup.kill", "1") == nil {
			return
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// remove kills what is left in the cgroup and deletes it, retrying until the
// dying processes are gone (bounded by ctx and a few seconds).
func (c *cgroups) remove(ctx context.Context, id string) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range c.dirs(id) {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			c.kill(id)
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

func writeFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
