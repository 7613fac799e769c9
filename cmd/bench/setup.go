package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"coco/internal/gitbuild"
	"coco/internal/localpg"
	"coco/sql/migrations"
	"coco/sql/store"
)

const (
	ingestToken    = "bench-ingest-token"
	dashboardToken = "bench-dashboard-token"
	devDir         = ".localpg" // the dev PostgreSQL's, as cmd/devdb's default
)

// serverURL is a PostgreSQL server the benchmark may create databases on:
// BENCH_DATABASE_URL, else the local dev cluster. It never reads
// DATABASE_URL: the benchmark drops and recreates its databases
// (coco_bench, coco_bench_growth) WITH (FORCE), cutting off anyone using
// them, so the server must be named for that purpose.
func serverURL(ctx context.Context) (string, error) {
	if u := os.Getenv("BENCH_DATABASE_URL"); u != "" {
		return u, nil
	}
	c, err := localpg.Start(ctx, devDir)
	if err != nil {
		return "", err
	}
	return c.URL(), nil
}

// freshDatabase drops and recreates database name on the server, migrates
// it with migrate, and returns its URL with the pool size both coco and the
// direct pool use.
func freshDatabase(ctx context.Context, server, name string, poolSize int, migrate func(ctx context.Context, dbURL string) error) (string, error) {
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "drop database if exists "+ident+" with (force)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "create database "+ident); err != nil {
		return "", err
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	if err := migrate(ctx, u.String()); err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(poolSize))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// deployment is a fresh migrated database with `coco serve` on it and a
// direct pool of the same size: the two sides every comparison needs.
type deployment struct {
	target
	dbURL string
	pool  *pgxpool.Pool
	proc  *cocoProcess
}

// migrateHere applies this build's migrations.
func migrateHere(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	_, err = migrations.Migrate(ctx, cfg, migrations.Options{})
	return err
}

// migrateWith returns a migrate function that runs `bin migrate`: a
// previous release sets up its own schema.
func migrateWith(bin string) func(context.Context, string) error {
	return func(ctx context.Context, dbURL string) error {
		cmd := exec.CommandContext(ctx, bin, "migrate")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s migrate: %v\n%s", bin, err, out)
		}
		return nil
	}
}

// deploy creates database name, migrated with migrate, and starts the coco
// at bin on it.
func deploy(ctx context.Context, server, bin, name string, poolSize int, migrate func(context.Context, string) error) (*deployment, error) {
	dbURL, err := freshDatabase(ctx, server, name, poolSize, migrate)
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	pool, err := openPool(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	proc, err := startCoco(ctx, bin, dbURL)
	if err != nil {
		pool.Close()
		return nil, err
	}
	t := target{host: proc.host, wire: newWire(proc.host), store: store.NewStore(pool)}
	return &deployment{target: t, dbURL: dbURL, pool: pool, proc: proc}, nil
}

func (d *deployment) close() {
	d.wire.close()
	d.proc.stop()
	d.pool.Close()
}

// thisBuild compiles the coco to measure once, from the working tree or,
// given a revision, from git history, and says how to migrate its database.
func thisBuild(ctx context.Context, revision, dir string) (string, func(context.Context, string) error, error) {
	if revision != "" {
		progress("building coco at %s to measure", revision)
		bin, err := gitbuild.Coco(ctx, revision, filepath.Join(dir, "this"))
		return bin, migrateWith(bin), err
	}
	progress("building coco")
	bin := filepath.Join(dir, "coco")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/coco")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("build coco: %w", err)
	}
	return bin, migrateHere, nil
}

// cocoProcess is a running `coco serve`.
type cocoProcess struct {
	cmd     *exec.Cmd
	host    string        // host:port
	drained chan struct{} // closed when drainTail has read stderr to EOF
}

// startCoco runs `coco serve` on a free loopback port against dbURL, in
// production mode, with env (NAME=value) added to its environment, and
// waits until /readyz answers 200.
func startCoco(ctx context.Context, bin, dbURL string, env ...string) (*cocoProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "serve", "-addr", addr)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"INGEST_SERVICE_TOKEN="+ingestToken,
		"DASHBOARD_TOKEN_MAP="+dashboardToken+":*",
		"DASHBOARD_ORIGIN=http://localhost:3000",
		"APP_ENV=production",
		// Every read on the primary, whatever the environment or .env
		// says, unless env names standbys.
		"DATABASE_READ_URL=",
	)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	// coco still formats and writes every log line, as in production, but
	// to /dev/null: a pipe would charge its reading to this process.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	cmd.Stdout = devNull
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &cocoProcess{cmd: cmd, host: addr, drained: make(chan struct{})}
	go func() {
		defer close(p.drained)
		drainTail(stderr)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.host + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.stop()
	return nil, errors.New("coco serve did not become ready within 15s")
}

// drainTail forwards what coco prints on stderr (start-up failures) until
// EOF, which comes when coco exits and its end of the pipe closes.
func drainTail(r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		fmt.Fprintln(os.Stderr, "coco:", s.Text())
	}
	// After a line too long for the scanner, keep reading, so coco never
	// blocks on a full pipe and EOF still ends this.
	_, _ = io.Copy(io.Discard, r)
}

// peakRSS is the process's high-water resident set size in MiB.
func (p *cocoProcess) peakRSS() (float64, error) {
	body, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// stop interrupts coco, kills it if it has not exited within 15s, and
// reaps it. Wait closes the stderr pipe, so os/exec forbids calling it
// before drainTail is done reading; the pipe's EOF tells that coco exited.
func (p *cocoProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.drained:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.drained
	}
	_ = p.cmd.Wait()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func openPool(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	return pool, pool.Ping(ctx)
}
