package localpg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"coco/internal/localpg"
)

// exec runs sql on a connection of its own to url.
func exec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// countRows returns the number of rows in table t at url.
func countRows(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, "select count(*) from t").Scan(&n)
	return n, err
}

// waitFor polls cond every 50 ms for up to 10 s and fails the test with what
// it expected if cond never holds.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s (last: %v)", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRows waits until table t at url has want rows.
func waitRows(t *testing.T, ctx context.Context, url string, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d rows in t at %s", want, url), func() (bool, error) {
		n, err := countRows(ctx, url)
		if err == nil && n != want {
			err = fmt.Errorf("%d rows", n)
		}
		return err == nil, err
	})
}

func startPrimaryAndStandby(t *testing.T, ctx context.Context) (p, s *localpg.Cluster) {
	t.Helper()
	p, err := localpg.StartTemp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Remove() })
	s, err = p.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Remove() })
	return p, s
}

func TestTempStandby(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	p, s := startPrimaryAndStandby(t, ctx)

	if s.Port() == p.Port() || s.DataDir() == p.DataDir() || s.Reused() {
		t.Fatalf("standby port %d, data %s, reused %v; want a new cluster beside port %d, data %s",
			s.Port(), s.DataDir(), s.Reused(), p.Port(), p.DataDir())
	}
	if err := exec(ctx, p.URL(), "create table t (n int); insert into t values (1)"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, s.URL(), 1)

	var pgErr *pgconn.PgError
	if err := exec(ctx, s.URL(), "insert into t values (2)"); !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("insert on the standby: err = %v, want SQLSTATE 25006 (read_only_sql_transaction)", err)
	}

	// Paused, the standby receives the primary's writes but shows none.
	if err := s.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, p.URL(), "insert into t values (2)"); err != nil {
		t.Fatal(err)
	}
	var first localpg.Lag
	waitFor(t, "WAL received and not replayed", func() (bool, error) {
		var err error
		first, err = s.ReplayLag(ctx)
		return err == nil && first.Bytes > 0 && first.Time > 0, err
	})
	time.Sleep(200 * time.Millisecond)
	if err := exec(ctx, p.URL(), "insert into t values (3)"); err != nil {
		t.Fatal(err)
	}
	var second localpg.Lag
	waitFor(t, "more WAL received and not replayed", func() (bool, error) {
		var err error
		second, err = s.ReplayLag(ctx)
		return err == nil && second.Bytes > first.Bytes, err
	})
	if second.Time < first.Time+200*time.Millisecond {
		t.Errorf("replay lag %v, then %v 200 ms later while paused; want it to grow as fast as the clock",
			first.Time, second.Time)
	}
	if n, err := countRows(ctx, s.URL()); err != nil || n != 1 {
		t.Fatalf("standby with replay paused has %d rows (err %v); want 1", n, err)
	}
	if err := s.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, s.URL(), 3)
	waitFor(t, "a replay lag of 0", func() (bool, error) {
		lag, err := s.ReplayLag(ctx)
		return err == nil && lag == localpg.Lag{}, err
	})
	if _, err := p.ReplayLag(ctx); err == nil {
		t.Error("ReplayLag of the primary succeeded; want an error saying it is not a standby")
	}

	// The faults act on the standby alone, and it streams again after each.
	if err := s.Freeze(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err := selectOne(short, s.URL())
	cancelShort()
	if err == nil {
		t.Fatal("query succeeded on a frozen standby")
	}
	if err := selectOne(ctx, p.URL()); err != nil {
		t.Fatalf("primary while its standby is frozen: %v", err)
	}
	if err := s.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, p.URL(), "insert into t values (4)"); err != nil {
		t.Fatalf("insert on the primary while its standby is down: %v", err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, s.URL(), 4)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, p.URL(), "insert into t values (5)"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, s.URL(), 5)
}

func TestRemoveStandbyOrPrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	p, s1 := startPrimaryAndStandby(t, ctx)
	s2, err := p.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Remove() })
	if err := exec(ctx, p.URL(), "create table t (n int); insert into t values (1)"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, s2.URL(), 1)

	if err := s1.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s1.DataDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("standby data %s still there after Remove (err %v)", s1.DataDir(), err)
	}
	if err := exec(ctx, p.URL(), "insert into t values (2)"); err != nil {
		t.Fatalf("primary after Remove of a standby: %v", err)
	}
	waitRows(t, ctx, s2.URL(), 2)

	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if n, err := countRows(ctx, s2.URL()); err != nil || n != 2 {
		t.Fatalf("standby after Remove of its primary: %d rows (err %v); want 2", n, err)
	}
	data := s2.DataDir()
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("standby data %s still there after Remove (err %v)", data, err)
	}
}

func TestDevStandby(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")
	p, err := localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Remove() })
	s, err := p.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Remove() })
	if s.Reused() {
		t.Error("first StartStandby reports a reused standby")
	}
	r, err := localpg.Running(localpg.StandbyDir(dir))
	if err != nil || r.URL() != s.URL() {
		t.Fatalf("Running(StandbyDir) = %v, %v; want the standby at %s", r, err, s.URL())
	}
	again, err := p.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused() || again.URL() != s.URL() {
		t.Errorf("second StartStandby: reused %v, URL %s; want reused, URL %s", again.Reused(), again.URL(), s.URL())
	}

	// A primary made anew under the standby: the standby follows it again.
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	p, err = localpg.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, p.URL(), "create table t (n int); insert into t values (1)"); err != nil {
		t.Fatal(err)
	}
	s2, err := p.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Reused() {
		t.Error("StartStandby reused a standby of the removed primary")
	}
	waitRows(t, ctx, s2.URL(), 1)

	if stopped, err := localpg.StopDir(localpg.StandbyDir(dir)); err != nil || !stopped {
		t.Fatalf("StopDir(StandbyDir) = %v, %v; want true, nil", stopped, err)
	}
	if err := selectOne(ctx, p.URL()); err != nil {
		t.Fatalf("primary after its standby stopped: %v", err)
	}
	s3, err := p.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s3.Reused() || s3.URL() != s2.URL() {
		t.Errorf("StartStandby after StopDir: reused %v, URL %s; want a fresh start on %s", s3.Reused(), s3.URL(), s2.URL())
	}
	waitRows(t, ctx, s3.URL(), 1)
}
