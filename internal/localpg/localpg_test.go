package localpg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/internal/localpg"
)

func selectOne(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		return err
	}
	if n != 1 {
		return errors.New("SELECT 1 did not return 1")
	}
	return nil
}

func TestTempClusterLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c, err := localpg.StartTemp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			c.Remove()
		}
	})

	if err := selectOne(ctx, c.URL()); err != nil {
		t.Fatalf("first connect to %s: %v", c.URL(), err)
	}
	pid, err := c.PID()
	if err != nil || pid <= 0 {
		t.Fatalf("PID() = %d, %v", pid, err)
	}

	// A frozen server accepts TCP connections but never answers.
	if err := c.Freeze(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err = selectOne(short, c.URL())
	cancelShort()
	if err == nil {
		t.Fatal("query succeeded on a frozen server")
	}
	if err := c.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := selectOne(ctx, c.URL()); err != nil {
		t.Fatalf("connect after Thaw: %v", err)
	}

	port := c.Port()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := selectOne(ctx, c.URL()); err == nil {
		t.Fatal("connect succeeded after Stop")
	}
	if _, err := c.PID(); !errors.Is(err, localpg.ErrNotRunning) {
		t.Fatalf("PID() after Stop: err = %v, want ErrNotRunning", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Fatalf("restarted on port %d, want %d", c.Port(), port)
	}
	if err := selectOne(ctx, c.URL()); err != nil {
		t.Fatalf("connect after Restart: %v", err)
	}

	// A killed postmaster leaves postmaster.pid behind; Restart copes.
	pid, err = c.PID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		t.Fatalf("Restart after SIGKILL: %v", err)
	}
	if err := selectOne(ctx, c.URL()); err != nil {
		t.Fatalf("connect after SIGKILL and Restart: %v", err)
	}

	data := c.DataDir()
	removed = true
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir %s still there after Remove (err %v)", data, err)
	}
}

func TestStartReusesRunningCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")

	if _, err := localpg.Running(dir); !errors.Is(err, localpg.ErrNotRunning) {
		t.Fatalf("Running before Start: err = %v, want ErrNotRunning", err)
	}
	c, err := localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove() })
	if c.Reused() {
		t.Error("first Start reports a reused cluster")
	}

	again, err := localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused() || again.URL() != c.URL() {
		t.Errorf("second Start: reused %v, URL %s; want reused, URL %s", again.Reused(), again.URL(), c.URL())
	}
	r, err := localpg.Running(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL() != c.URL() {
		t.Errorf("Running URL %s, want %s", r.URL(), c.URL())
	}
	if err := selectOne(ctx, r.URL()); err != nil {
		t.Fatal(err)
	}

	if stopped, err := localpg.StopDir(dir); err != nil || !stopped {
		t.Fatalf("StopDir = %v, %v; want true, nil", stopped, err)
	}
	if _, err := localpg.Running(dir); !errors.Is(err, localpg.ErrNotRunning) {
		t.Fatalf("Running after StopDir: err = %v, want ErrNotRunning", err)
	}
	if stopped, err := localpg.StopDir(dir); err != nil || stopped {
		t.Fatalf("StopDir with nothing running = %v, %v; want false, nil", stopped, err)
	}
	if stopped, err := localpg.StopDir(filepath.Join(t.TempDir(), "absent")); err != nil || stopped {
		t.Fatalf("StopDir of a missing directory = %v, %v; want false, nil", stopped, err)
	}

	// Started again, it gets its previous port back.
	c2, err := localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Reused() || c2.URL() != c.URL() {
		t.Errorf("restart: reused %v, URL %s; want fresh start, URL %s", c2.Reused(), c2.URL(), c.URL())
	}
	if err := selectOne(ctx, c2.URL()); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")

	if stopped, freed, err := localpg.RemoveDir(dir); err != nil || stopped || freed != 0 {
		t.Fatalf("RemoveDir of a missing directory = %v, %d, %v; want false, 0, nil", stopped, freed, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("RemoveDir of a missing directory made it (Stat: %v)", err)
	}

	c, err := localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove() })
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "create table t as select g from generate_series(1, 100000) g")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{c.DataDir(), c.LogFile(), filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		paths = append(paths, filepath.Dir(c.DataDir())) // the home under the temp dir
	}
	usage, err := localpg.DiskUsage(dir)
	if err != nil || usage < 10e6 {
		t.Errorf("DiskUsage = %d, %v; want over 10 MB", usage, err)
	}

	stopped, freed, err := localpg.RemoveDir(dir)
	if err != nil || !stopped || freed < usage/2 {
		t.Fatalf("RemoveDir = %v, %d, %v; want true, about %d, nil", stopped, freed, err, usage)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after RemoveDir (Lstat: %v)", p, err)
		}
	}
	if _, err := localpg.Running(dir); !errors.Is(err, localpg.ErrNotRunning) {
		t.Errorf("Running after RemoveDir: err = %v, want ErrNotRunning", err)
	}
	if usage, err := localpg.DiskUsage(dir); err != nil || usage != 0 {
		t.Errorf("DiskUsage after RemoveDir = %d, %v; want 0, nil", usage, err)
	}
	if stopped, freed, err := localpg.RemoveDir(dir); err != nil || stopped || freed != 0 {
		t.Errorf("second RemoveDir = %v, %d, %v; want false, 0, nil", stopped, freed, err)
	}

	// Start makes a fresh cluster; RemoveDir removes a stopped one too.
	c, err = localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Reused() {
		t.Error("Start after RemoveDir reports a reused cluster")
	}
	conn, err = pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	var table *string
	err = conn.QueryRow(ctx, "select to_regclass('t')::text").Scan(&table)
	conn.Close(ctx)
	if err != nil || table != nil {
		t.Errorf("Start after RemoveDir: table t is there (err %v); want a fresh, empty cluster", err)
	}
	if stopped, err := localpg.StopDir(dir); err != nil || !stopped {
		t.Fatalf("StopDir = %v, %v; want true, nil", stopped, err)
	}
	if stopped, freed, err := localpg.RemoveDir(dir); err != nil || stopped || freed <= 0 {
		t.Errorf("RemoveDir of a stopped cluster = %v, %d, %v; want false, > 0, nil", stopped, freed, err)
	}
	if _, err := os.Stat(c.DataDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir %s still there after RemoveDir (err %v)", c.DataDir(), err)
	}
}
