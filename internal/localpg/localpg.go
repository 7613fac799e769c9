// Package localpg starts and stops throwaway PostgreSQL clusters on the
// local machine, so that tests and development need nothing but the server
// binaries (initdb, pg_ctl) installed.
//
// Start keeps a development cluster in a directory (the repository's
// git-ignored .localpg by default, see cmd/devdb) and reuses it while it runs
// (StopDir stops it, keeping its data; RemoveDir deletes it);
// StartTemp makes a brand-new cluster for a test that needs a server of its
// own, for instance to stop, restart or freeze it. StartStandby makes a hot
// standby of either, streaming from it, for tests and development of read
// replicas.
//
// The clusters are tuned for speed, not safety (fsync is off), listen on
// 127.0.0.1 only, over TCP only, and trust every local connection, the
// standbys' replication connections included, as the superuser "postgres":
// never keep anything of value in them.
//
// PostgreSQL refuses to run as root. When the caller is root, the server
// runs as the "postgres" OS user, and a Start cluster keeps its data under
// os.TempDir() (where that user can reach it, unlike a clone under /root),
// with symbolic links to it in the directory given to Start.

package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is returned (wrapped) when a directory holds no running
// cluster.
var ErrNotRunning = errors.New("no PostgreSQL server running")

// Names inside the cluster directory (or, as root, the data home).
const (
	dataName = "data"         // the PostgreSQL data directory
	logName  = "postgres.log" // server log (pg_ctl -l)
	lockName = "lock"         // flock guarding Start, StopDir and RemoveDir
	confName = "localpg.conf" // settings, included from postgresql.conf
	include  = "include = '" + confName + "'\n"
)

// Cluster is a local PostgreSQL cluster started by this package.
type Cluster struct {
	dir     string // directory given to Start, or StartTemp's temp dir
	home    string // where data and log live: dir, or as root a dir under os.TempDir()
	dataDir string
	logFile string
	port    int
	temp    bool
	reused  bool
	bin     binaries
	cred    *syscall.Credential // the postgres user when running as root, else nil

	mu     sync.Mutex
	frozen bool
}

// URL returns the connection URL of the cluster's "postgres" database as the
// "postgres" superuser.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Port returns the TCP port the server listens on, on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// DataDir returns the PostgreSQL data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// LogFile returns the path of the server log.
func (c *Cluster) LogFile() string { return c.logFile }

// Reused reports whether Start found the cluster already running rather than
// starting it.
func (c *Cluster) Reused() bool { return c.reused }

// StartTemp creates and starts a brand-new cluster in a fresh temporary
// directory, on a free port. Call Remove when done (t.Cleanup(func() {
// c.Remove() }) in a test) to stop it and delete its data.
func StartTemp(ctx context.Context) (*Cluster, error) {
	c, err := newTemp("coco-localpg-temp-")
	if err != nil {
		return nil, err
	}
	if err := c.create(ctx); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

// serverTools finds the server's programs and the user to run them as.
func serverTools() (binaries, *syscall.Credential, error) {
	bin, err := findBinaries()
	if err != nil {
		return binaries{}, nil, err
	}
	cred, err := serverCredential()
	return bin, cred, err
}

// newTemp makes a fresh temporary directory, named with prefix, for a
// cluster of its own, without creating the cluster.
func newTemp(prefix string) (*Cluster, error) {
	bin, cred, err := serverTools()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("localpg: %w", err)
		}
	}
	return &Cluster{
		dir: dir, home: dir, temp: true, bin: bin, cred: cred,
		dataDir: filepath.Join(dir, dataName),
		logFile: filepath.Join(dir, logName),
	}, nil
}

func (c *Cluster) create(ctx context.Context) error {
	if err := c.initdb(ctx); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	return c.startOn(ctx, port)
}

// Stop shuts the server down (pg_ctl stop -m fast), disconnecting clients
// and keeping the data. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() error {
	return c.stop("fast")
}

func (c *Cluster) stop(mode string) error {
	if pf, err := readPIDFile(c.dataDir); err != nil || !alive(pf.pid) {
		return nil
	}
	c.mu.Lock()
	frozen := c.frozen
	c.mu.Unlock()
	if frozen {
		if err := c.Thaw(); err != nil {
			return err
		}
	}
	err := c.run(context.Background(), c.bin.pgCtl, "stop", "-D", c.dataDir, "-m", mode, "-w")
	if err != nil {
		// pg_ctl fails when the postmaster dies without removing its
		// postmaster.pid (SIGKILL): stopped all the same.
		if pf, perr := readPIDFile(c.dataDir); perr != nil || !alive(pf.pid) {
			return nil
		}
	}
	return err
}

// Remove stops the server at once (pg_ctl stop -m immediate) and deletes
// its data: the whole directory for a StartTemp cluster; the data
// directory, log and links for a Start one.
func (c *Cluster) Remove() error {
	err := c.stop("immediate")
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if c.temp {
		errs = append(errs, os.RemoveAll(c.dir))
		return errors.Join(errs...)
	}
	errs = append(errs, os.RemoveAll(c.dataDir), removeIfExists(c.logFile))
	if c.home != c.dir {
		errs = append(errs,
			removeIfExists(filepath.Join(c.dir, dataName)),
			removeIfExists(filepath.Join(c.dir, logName)),
			os.RemoveAll(c.home))
	}
	return errors.Join(errs...)
}

// serverCredential returns the postgres user's IDs when running as root, and
// nil otherwise.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localpg: PostgreSQL does not run as root, and there is no "+
			"postgres user to run it as (%v); create one or run as another user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("localpg: postgres user has non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// initdb creates the cluster unless the data directory already holds one,
// and makes its postgresql.conf include our settings file.
func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if ents, err := os.ReadDir(c.dataDir); err == nil && len(ents) > 0 {
			return fmt.Errorf("localpg: %s is not empty but holds no cluster; remove it", c.dataDir)
		}
		if err := c.run(ctx, c.bin.initdb, "-D", c.dataDir, "-U", "postgres",
			"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
			return err
		}
	}
	conf := filepath.Join(c.dataDir, "postgresql.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if strings.Contains(string(b), include) {
		return nil
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	_, err = f.WriteString("\n# Settings of coco/internal/localpg.\n" + include)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return nil
}

// writeConf writes the settings file for a start on port.
func (c *Cluster) writeConf(port int) error {
	conf := fmt.Sprintf(`# Written by coco/internal/localpg at every start; edits are lost.
# A throwaway cluster: fast, and safe against a killed server (every
# acknowledged commit has reached the OS), though not against an OS crash.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
port = %d
max_connections = 300
fsync = off
full_page_writes = off
# For standbys (StartStandby). With feedback, the primary's vacuum cancels
# no query on a standby; a shutdown waits for every standby to confirm the
# WAL sent, so a frozen one holds the primary's up to wal_sender_timeout.
# A standby stopped or frozen for a while finds the WAL it missed still
# there (each CREATE DATABASE of a test writes megabytes of it).
hot_standby = on
hot_standby_feedback = on
wal_sender_timeout = '5s'
wal_keep_size = '256MB'
`, port)
	path := filepath.Join(c.dataDir, confName)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
	}
	return nil
}

// startOn starts the server on port. Should another process take the port
// between our check and the server's bind, it retries on a fresh one.
func (c *Cluster) startOn(ctx context.Context, port int) error {
	for attempt := 1; ; attempt++ {
		if err := c.writeConf(port); err != nil {
			return err
		}
		err := c.pgCtlStart(ctx)
		if err == nil || attempt == 3 || portFree(port) || ctx.Err() != nil {
			return err
		}
		if port, err = freePort(); err != nil {
			return err
		}
	}
}

// pgCtlStart runs pg_ctl start on the configured port and waits until the
// server accepts connections. Its error carries the end of the server log.
func (c *Cluster) pgCtlStart(ctx context.Context) error {
	// A server killed with SIGKILL leaves its postmaster.pid behind.
	// PostgreSQL replaces a stale one itself, after checking that no orphaned
	// backend still uses the old shared memory, but takes the file for a live
	// server while the dead postmaster is a zombie that init has yet to reap:
	// only then is it removed here.
	if pf, err := readPIDFile(c.dataDir); err == nil && zombie(pf.pid) {
		os.Remove(filepath.Join(c.dataDir, "postmaster.pid"))
	}
	var logStart int64
	if fi, err := os.Stat(c.logFile); err == nil {
		logStart = fi.Size()
	}
	err := c.run(ctx, c.bin.pgCtl, "start", "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("%w\nserver log (%s):\n%s", err, c.logFile, tail(c.logFile, logStart, 2000))
	}
	c.port = c.previousPort()
	return nil
}

// waitReady waits for a server that another process started to accept
// connections, and records its port.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		pf, err := readPIDFile(c.dataDir)
		if err == nil && pf.status == "ready" && accepting(pf.port) {
			c.port = pf.port
			return nil
		}
		if err == nil && !alive(pf.pid) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("localpg: server in %s exited while starting; see %s", c.dataDir, c.logFile)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: server in %s runs but does not accept connections; see %s",
				c.dataDir, c.logFile)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localpg: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run runs a PostgreSQL tool, as the postgres user when we are root, and
// returns its output in the error if it fails.
func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		// PGDATA, PGPORT and friends would only get in the way.
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Dir = c.home // our working directory may be closed to postgres
		env = append(env, "HOME="+c.home)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("localpg: %s %s: %w\n%s",
			filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tail returns up to max bytes from the end of path, from offset on.
func tail(path string, offset int64, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > max {
		offset = fi.Size() - max
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "(" + err.Error() + ")"
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// portFree reports whether 127.0.0.1:port can be listened on.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort asks the OS for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
