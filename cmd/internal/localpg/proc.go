package localpg

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
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

// Freeze stops (SIGSTOP) the postmaster and all its child processes, so the
// server keeps its connections open but answers nothing, as a hung host
// would. The postmaster is stopped first so that it forks no new children.
// Thaw undoes it; Stop and Remove thaw a frozen cluster first.
//
// Postmaster children put themselves in process groups of their own, so
// they are found by parent PID rather than by signalling a group.
func (c *Cluster) Freeze() error {
	pid, err := c.PID()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("localpg: freeze postmaster %d: %w", pid, err)
	}
	c.frozen = true
	kids, err := children(pid)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range kids {
		if err := syscall.Kill(k, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("localpg: freeze backend %d: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// Thaw resumes (SIGCONT) the postmaster and its children after Freeze. It
// is harmless on a cluster that is not frozen.
func (c *Cluster) Thaw() error {
	pid, err := c.PID()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kids, err := children(pid)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range kids {
		if err := syscall.Kill(k, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("localpg: thaw backend %d: %w", k, err))
		}
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		errs = append(errs, fmt.Errorf("localpg: thaw postmaster %d: %w", pid, err))
	}
	if len(errs) == 0 {
		c.frozen = false
	}
	return errors.Join(errs...)
}

// children lists the PIDs of the direct children of pid: from /proc where
// there is one (Linux), otherwise with pgrep -P (macOS, BSD).
func children(pid int) ([]int, error) {
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		return procChildren(pid)
	}
	out, err := exec.Command("pgrep", "-P", strconv.Itoa(pid)).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return nil, nil // no match
	}
	if err != nil {
		return nil, fmt.Errorf("localpg: pgrep -P %d: %w", pid, err)
	}
	var kids []int
	for _, f := range strings.Fields(string(out)) {
		if k, err := strconv.Atoi(f); err == nil {
			kids = append(kids, k)
		}
	}
	return kids, nil
}

// procChildren scans /proc/<pid>/stat for processes whose parent is pid.
func procChildren(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	var kids []int
	for _, e := range ents {
		k, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if ppid, _ := procStat(b); ppid == pid {
			kids = append(kids, k)
		}
	}
	return kids, nil
}
