package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Process identity for lease records: "bootid/pid/start", where start is
// the process's start time in clock ticks since boot (field 22 of
// /proc/PID/stat). A pid alone is not enough: after a crash the kernel
// hands the pid to another process, and in a restarted container hero is
// pid 1 again. The boot id tells records from before a reboot apart.

func hostName() string {
	h, _ := os.Hostname()
	return h
}

func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// startTime reads a process's start time; ok is false when it cannot,
// gone says the process does not exist.
func startTime(pid int) (start uint64, ok, gone bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, errors.Is(err, fs.ErrNotExist)
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its closing parenthesis.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, false, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64) // field 22 overall
	if err != nil {
		return 0, false, false
	}
	return v, true, false
}

// selfProcess is this process's identity; "" where /proc is missing.
func selfProcess() string {
	return processID(os.Getpid())
}

func processID(pid int) string {
	boot := bootID()
	start, ok, _ := startTime(pid)
	if boot == "" || !ok {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", boot, pid, start)
}

// processAlive reports whether the process a record names still runs. A
// record it cannot parse counts as alive: never destroy what might be in use.
func processAlive(id string) bool {
	parts := strings.Split(id, "/")
	if len(parts) != 3 {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return true
	}
	if boot := bootID(); boot != "" && boot != parts[0] {
		return false // recorded before the last boot
	}
	start, ok, gone := startTime(pid)
	switch {
	case gone:
		return false
	case !ok:
		return true // hidden (hidepid) or unreadable: assume it runs
	}
	return strconv.FormatUint(start, 10) == parts[2]
}
