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

	"coco/cmd/internal/localpg"
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
