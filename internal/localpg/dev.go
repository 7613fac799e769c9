// The development cluster: one kept in a directory (the repository's
// .localpg), found again by later commands and shared between processes.

package localpg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// Start starts the cluster kept in dir, creating dir and the cluster if
// needed, and returns it once it accepts connections. If the cluster already
// runs, Start returns it as it is. A restarted cluster gets its previous port
// back when that port is free, otherwise a free one. A lock file in dir keeps
// concurrent callers (other processes too) from starting it twice.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	c, unlock, err := openDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if pf, err := readPIDFile(c.dataDir); err == nil && alive(pf.pid) {
		if err := c.waitReady(ctx); err != nil {
			return nil, err
		}
		c.reused = true
		return c, nil
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	port := c.previousPort()
	if port == 0 || !portFree(port) {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := c.startOn(ctx, port); err != nil {
		return nil, err
	}
	return c, nil
}

// Running returns the cluster running in dir, as started by Start in this or
// another process, or an error wrapping ErrNotRunning.
func Running(dir string) (*Cluster, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("localpg: %s: %w", dir, ErrNotRunning)
	}
	c, err := newCluster(dir)
	if err != nil {
		return nil, err
	}
	pf, err := readPIDFile(c.dataDir)
	if err != nil || !alive(pf.pid) {
		return nil, fmt.Errorf("localpg: %s: %w", dir, ErrNotRunning)
	}
	if pf.status != "ready" || !accepting(pf.port) {
		return nil, fmt.Errorf("localpg: server in %s (PID %d, port %d) is not accepting connections (status %q)",
			dir, pf.pid, pf.port, pf.status)
	}
	c.port = pf.port
	c.reused = true
	return c, nil
}

// StopDir stops the cluster that Start started in dir, possibly from another
// process, and reports whether one was running. If none runs it does
// nothing and returns false and no error.
func StopDir(dir string) (stopped bool, err error) {
	if _, err := os.Stat(dir); err != nil {
		return false, nil
	}
	c, err := newCluster(dir)
	if err != nil {
		return false, err
	}
	unlock, err := lockDir(context.Background(), c.dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	if pf, err := readPIDFile(c.dataDir); err != nil || !alive(pf.pid) {
		return false, nil
	}
	if err := c.Stop(); err != nil {
		return false, err
	}
	return true, nil
}

// RemoveDir deletes for good the cluster that Start keeps in dir, stopping
// it first (pg_ctl stop -m immediate) if it runs, whichever process started
// it: its data directory and log, and as root their home under os.TempDir()
// and the links to them in dir. It takes dir's lock, as StopDir
// does. dir itself and its lock file stay, so that Start makes a fresh
// cluster there. It leaves the standby in StandbyDir(dir) alone: remove that
// first, or it goes on running and retrying its primary.
//
// RemoveDir reports whether a server was running and how much disk space the
// deleted files took. A directory that Start never used (it has no lock
// file, or does not exist) is left untouched: RemoveDir returns false, 0 and
// no error.
func RemoveDir(dir string) (stopped bool, freed int64, err error) {
	if _, err := os.Stat(filepath.Join(dir, lockName)); errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	} else if err != nil {
		return false, 0, fmt.Errorf("localpg: %w", err)
	}
	c, err := newCluster(dir)
	if err != nil {
		return false, 0, err
	}
	unlock, err := lockDir(context.Background(), c.dir)
	if err != nil {
		return false, 0, err
	}
	defer unlock()
	if pf, err := readPIDFile(c.dataDir); err == nil && alive(pf.pid) {
		if err := c.stop("immediate"); err != nil {
			return false, 0, err
		}
		stopped = true
	}
	freed = c.diskUsage()
	if err := c.Remove(); err != nil {
		return stopped, 0, fmt.Errorf("localpg: remove the cluster in %s: %w", dir, err)
	}
	return stopped, freed, nil
}

// DiskUsage returns the disk space that the data directory and log of the
// cluster that Start keeps in dir take, running or not: what RemoveDir would
// free. It is 0 when there is no cluster. It does not count the standby in
// StandbyDir(dir).
func DiskUsage(dir string) (int64, error) {
	if _, err := os.Stat(filepath.Join(dir, lockName)); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	c, err := newCluster(dir)
	if err != nil {
		return 0, err
	}
	return c.diskUsage(), nil
}

// diskUsage returns the space taken by the data directory and the log: the
// blocks allocated to them, as du counts them. Files that vanish or cannot be
// read meanwhile count as nothing.
func (c *Cluster) diskUsage() int64 {
	var n int64
	for _, root := range []string{c.dataDir, c.logFile} {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					n += st.Blocks * 512
				} else {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// openDir creates dir if needed, takes its lock, and prepares the data home,
// for a cluster to be found running or started there. Call unlock when done.
func openDir(ctx context.Context, dir string) (c *Cluster, unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("localpg: %w", err)
	}
	if c, err = newCluster(dir); err != nil {
		return nil, nil, err
	}
	if unlock, err = lockDir(ctx, c.dir); err != nil {
		return nil, nil, err
	}
	if c.cred != nil {
		if err := ensureHome(c.home, c.cred); err != nil {
			unlock()
			return nil, nil, err
		}
		// Links for people looking into dir; the code does not follow them.
		linkTo(filepath.Join(c.dir, dataName), c.dataDir)
		linkTo(filepath.Join(c.dir, logName), c.logFile)
	}
	return c, unlock, nil
}

// newCluster works out where the cluster of dir lives, without creating
// anything.
func newCluster(dir string) (*Cluster, error) {
	bin, cred, err := serverTools()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	c := &Cluster{dir: abs, home: abs, bin: bin, cred: cred}
	if cred != nil {
		sum := sha256.Sum256([]byte(abs))
		c.home = filepath.Join(os.TempDir(), "coco-localpg-"+hex.EncodeToString(sum[:8]))
	}
	c.dataDir = filepath.Join(c.home, dataName)
	c.logFile = filepath.Join(c.home, logName)
	return c, nil
}

// ensureHome creates the data home under os.TempDir(), owned by the postgres
// user, and makes sure an existing one is a real directory of that user: the
// temp dir is shared with everyone.
func ensureHome(home string, cred *syscall.Credential) error {
	fi, err := os.Lstat(home)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(home, 0o700); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		if err := os.Chown(home, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != cred.Uid {
		return fmt.Errorf("localpg: %s exists but is not a directory of the postgres user; remove it", home)
	}
	return nil
}

// linkTo makes link a symbolic link to target, unless something other than
// a symbolic link is already there. Errors are ignored: the links are a
// convenience only.
func linkTo(link, target string) {
	if fi, err := os.Lstat(link); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return
		}
		if cur, _ := os.Readlink(link); cur == target {
			return
		}
		os.Remove(link)
	}
	os.Symlink(target, link)
}

// lockDir takes an exclusive flock on dir/lock, waiting for it as long as
// ctx allows.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("localpg: lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("localpg: waiting for %s: %w", f.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var portLine = regexp.MustCompile(`(?m)^port = (\d+)$`)

// previousPort returns the port of the last start, or 0.
func (c *Cluster) previousPort() int {
	b, err := os.ReadFile(filepath.Join(c.dataDir, confName))
	if err != nil {
		return 0
	}
	m := portLine.FindSubmatch(b)
	if m == nil {
		return 0
	}
	p, _ := strconv.Atoi(string(m[1]))
	return p
}
