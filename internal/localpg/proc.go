package localpg

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidFile is the parsed postmaster.pid of a data directory.
type pidFile struct {
	pid    int
	port   int
	status string // "starting", "ready", "stopping", "standby" or ""
}

// readPIDFile parses dataDir/postmaster.pid. Its lines are: PID, data
// directory, start time, port, socket directory, listen address, shared
// memory key and status (PostgreSQL 10 and later).
func readPIDFile(dataDir string) (pidFile, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return pidFile{}, err
	}
	lines := strings.Split(string(b), "\n")
	var pf pidFile
	if pf.pid, err = strconv.Atoi(strings.TrimSpace(lines[0])); err != nil || pf.pid <= 0 {
		return pidFile{}, fmt.Errorf("localpg: bad PID in %s/postmaster.pid", dataDir)
	}
	if len(lines) > 3 {
		pf.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if len(lines) > 7 {
		pf.status = strings.TrimSpace(lines[7])
	}
	return pf, nil
}

// alive reports whether a process with this PID exists (EPERM means it does
// but belongs to another user) and, where /proc tells, is no zombie: a
// killed postmaster may wait a while for init to reap it.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, state := procStat(b)
	return state != "Z"
}

// zombie reports whether pid has exited but is not yet reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, state := procStat(b)
	return state == "Z"
}

// procStat returns the parent PID and the state from the contents of
// /proc/<pid>/stat, "pid (comm) state ppid ...", where comm may hold spaces
// and parentheses. ppid is -1 if the line does not parse.
func procStat(b []byte) (ppid int, state string) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1, ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1, ""
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return -1, f[0]
	}
	return ppid, f[0]
}

// accepting reports whether something listens on 127.0.0.1:port.
func accepting(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// PID returns the process ID of the postmaster, read from postmaster.pid.
func (c *Cluster) PID() (int, error) {
	pf, err := readPIDFile(c.dataDir)
	if errors.Is(err, os.ErrNotExist) || err == nil && !alive(pf.pid) {
		return 0, fmt.Errorf("localpg: no server running in %s: %w", c.dataDir, ErrNotRunning)
	}
	if err != nil {
		return 0, err
	}
	return pf.pid, nil
}
