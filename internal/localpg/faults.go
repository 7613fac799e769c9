// Faults for tests: a server that freezes, restarts or dies.

package localpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Restart starts the cluster again on the same port, stopping it first if
// it runs.
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.pgCtlStart(context.Background())
}

// Freeze stops (SIGSTOP) the postmaster and all its child processes, so the
// server keeps its connections open but answers nothing, as a hung host
// would. The postmaster is stopped first so that it forks no new children.
// Thaw undoes it; Stop and Remove thaw a frozen cluster first. A frozen
// standby holds up its primary's Stop for up to wal_sender_timeout (5 s).
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

// Kill kills the postmaster and every process it started with SIGKILL, as
// the loss of the host or of the container would: no shutdown, no message to
// the clients, the kernel closes the sockets. It returns once they have all
// exited, so that no orphaned backend answers a query meanwhile. Restart
// brings the cluster back, through crash recovery.
func (c *Cluster) Kill() error {
	pid, err := c.PID()
	if err != nil {
		return err
	}
	// Stopped, the postmaster forks no backend between the listing and the kill.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("localpg: stop postmaster %d: %w", pid, err)
	}
	kids, err := children(pid)
	if err != nil {
		return err
	}
	pids := append([]int{pid}, kids...)
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("localpg: kill %d: %w", p, err)
		}
	}
	c.mu.Lock()
	c.frozen = false
	c.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(pids, alive) {
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: killed server processes %v still running after 10s", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
