package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/cmd/internal/localpg"
)

func runDevdb(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"-h"}, 0},
		{[]string{"start", "-h"}, 0},
		{[]string{"bogus"}, 2},
		{[]string{"start", "-bogus"}, 2},
		{[]string{"url", "extra"}, 2},
		{[]string{"start-standby", "-h"}, 0},
		{[]string{"start-standby", "extra"}, 2},
	} {
		code, _, stderr := runDevdb(tc.args...)
		if code != tc.code {
			t.Errorf("devdb %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
	}
}

func TestStartURLStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")

	if code, out, _ := runDevdb("url", "-dir", dir); code != 1 || out != "" {
		t.Fatalf("url before start: exit %d, stdout %q; want 1, empty", code, out)
	}
	code, started, stderr := runDevdb("start", "-dir", dir)
	if code != 0 || !strings.HasPrefix(started, "postgres://") || strings.Count(started, "\n") != 1 {
		t.Fatalf("start: exit %d, stdout %q, stderr %q", code, started, stderr)
	}
	c, err := localpg.Running(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove() })

	if code, out, _ := runDevdb("start", "-dir", dir); code != 0 || out != started {
		t.Errorf("second start: exit %d, stdout %q; want 0, %q", code, out, started)
	}
	if code, out, _ := runDevdb("url", "-dir", dir); code != 0 || out != started {
		t.Errorf("url: exit %d, stdout %q; want 0, %q", code, out, started)
	}
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" || stderr != "devdb: PostgreSQL in "+dir+" stopped\n" {
		t.Errorf("stop: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code, _, _ := runDevdb("url", "-dir", dir); code != 1 {
		t.Errorf("url after stop: exit %d, want 1", code)
	}
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" || stderr != "localpg: no PostgreSQL server running in "+dir+"\n" {
		t.Errorf("stop with nothing running: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

func TestStartStandbyStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")
	sdir := localpg.StandbyDir(dir)

	code, standby, stderr := runDevdb("start-standby", "-dir", dir)
	if code != 0 || !strings.HasPrefix(standby, "postgres://") || strings.Count(standby, "\n") != 1 {
		t.Fatalf("start-standby: exit %d, stdout %q, stderr %q", code, standby, stderr)
	}
	for _, d := range []string{dir, sdir} {
		c, err := localpg.Running(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Remove() })
	}
	if !strings.Contains(stderr, "devdb: PostgreSQL started on port") ||
		!strings.Contains(stderr, "devdb: PostgreSQL standby started on port") {
		t.Errorf("start-standby with nothing running: stderr %q; want both the cluster and its standby started", stderr)
	}
	code, primary, _ := runDevdb("url", "-dir", dir)
	if code != 0 || primary == standby {
		t.Fatalf("url: exit %d, stdout %q; want 0 and a URL other than the standby's %q", code, primary, standby)
	}
	for url, want := range map[string]bool{primary: false, standby: true} {
		conn, err := pgx.Connect(ctx, strings.TrimSpace(url))
		if err != nil {
			t.Fatal(err)
		}
		var inRecovery bool
		err = conn.QueryRow(ctx, "select pg_is_in_recovery()").Scan(&inRecovery)
		conn.Close(ctx)
		if err != nil || inRecovery != want {
			t.Errorf("%s: pg_is_in_recovery() = %v (err %v), want %v", url, inRecovery, err, want)
		}
	}

	code, out, stderr := runDevdb("start-standby", "-dir", dir)
	if code != 0 || out != standby || !strings.Contains(stderr, "devdb: PostgreSQL standby already running on port") {
		t.Errorf("second start-standby: exit %d, stdout %q, stderr %q; want 0, %q, already running", code, out, stderr, standby)
	}
	want := "devdb: PostgreSQL standby in " + sdir + " stopped\ndevdb: PostgreSQL in " + dir + " stopped\n"
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" || stderr != want {
		t.Errorf("stop: exit %d, stdout %q, stderr %q; want 0, empty, %q", code, out, stderr, want)
	}
	if _, err := localpg.Running(sdir); !errors.Is(err, localpg.ErrNotRunning) {
		t.Errorf("Running(%s) after stop: err = %v, want ErrNotRunning", sdir, err)
	}
	if code, _, _ := runDevdb("url", "-dir", dir); code != 1 {
		t.Errorf("url after stop: exit %d, want 1", code)
	}
}
