package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/internal/localpg"
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
		{[]string{"clean", "-h"}, 0},
		{[]string{"clean", "-bogus"}, 2},
		{[]string{"clean", "extra"}, 2},
	} {
		code, stdout, stderr := runDevdb(tc.args...)
		if code != tc.code {
			t.Errorf("devdb %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
		switch {
		case code == 0:
			// Asked for, the usage goes to stdout.
			if !strings.HasPrefix(stdout, "usage: devdb") || stderr != "" {
				t.Errorf("devdb %v: stdout %q, stderr %q; want the usage on stdout only", tc.args, stdout, stderr)
			}
		case len(tc.args) == 0:
			if !strings.HasPrefix(stderr, "usage: devdb") {
				t.Errorf("devdb: stderr %q; want the usage", stderr)
			}
		default:
			// A message says what is wrong, then the usage follows.
			if !strings.HasPrefix(stderr, "devdb: ") || !strings.Contains(stderr, "\nusage: devdb") {
				t.Errorf("devdb %v: stderr %q; want a \"devdb: \" message, then the usage", tc.args, stderr)
			}
		}
	}
}

// messages checks that stderr holds only lines starting with "devdb: ", and
// no "localpg: " right after it.
func messages(t *testing.T, args []string, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(line, "devdb: ") || strings.HasPrefix(line, "devdb: localpg: ") {
			t.Errorf("devdb %v: stderr line %q; want one starting with \"devdb: \" (once)", args, line)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	// A directory that cannot be made, below a regular file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"start", "-dir", filepath.Join(file, "pg")}
	code, out, stderr := runDevdb(args...)
	if code != 1 || out != "" || !strings.Contains(stderr, "not a directory") {
		t.Errorf("devdb %v: exit %d, stdout %q, stderr %q; want 1, empty, \"not a directory\"", args, code, out, stderr)
	}
	messages(t, args, stderr)
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
	kept := regexp.QuoteMeta("devdb: its data is kept in "+dir+" (") + `\d+ MB` +
		regexp.QuoteMeta("); make db-clean DEVDB_DIR="+dir+" deletes it\n")
	want := regexp.MustCompile("^" + regexp.QuoteMeta("devdb: PostgreSQL in "+dir+" stopped\n") + kept + "$")
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" || !want.MatchString(stderr) {
		t.Errorf("stop: exit %d, stdout %q, stderr %q; want 0, empty, %q", code, out, stderr, want)
	}
	if code, _, _ := runDevdb("url", "-dir", dir); code != 1 {
		t.Errorf("url after stop: exit %d, want 1", code)
	}
	want = regexp.MustCompile("^" + regexp.QuoteMeta("devdb: no PostgreSQL server running in "+dir+"\n") + kept + "$")
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" || !want.MatchString(stderr) {
		t.Errorf("stop with nothing running: exit %d, stdout %q, stderr %q; want 0, empty, %q", code, out, stderr, want)
	}
}

// dataOf returns where the data and log of the running cluster in dir live,
// and as root their home under the temp dir (else "").
func dataOf(t *testing.T, dir string) (paths []string, c *localpg.Cluster) {
	t.Helper()
	c, err := localpg.Running(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths = []string{c.DataDir(), c.LogFile(), filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")}
	if home := filepath.Dir(c.DataDir()); os.Geteuid() == 0 {
		if !strings.HasPrefix(home, os.TempDir()) {
			t.Fatalf("as root, the data of %s is in %s, want it under %s", dir, home, os.TempDir())
		}
		paths = append(paths, home)
	}
	return paths, c
}

// gone checks that none of paths exists, as a link or anything else.
func gone(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after clean (Lstat: %v)", p, err)
		}
	}
}

// query runs sql at url and scans its one row into dest; with no dest, it
// just runs it.
func query(t *testing.T, ctx context.Context, url, sql string, dest ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctx, strings.TrimSpace(url))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if len(dest) == 0 {
		_, err = conn.Exec(ctx, sql)
	} else {
		err = conn.QueryRow(ctx, sql).Scan(dest...)
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestClean(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")

	code, url, stderr := runDevdb("start", "-dir", dir)
	if code != 0 {
		t.Fatalf("start: exit %d, stderr %q", code, stderr)
	}
	paths, c := dataOf(t, dir)
	t.Cleanup(func() { c.Remove() })
	query(t, ctx, url, "create table t as select g from generate_series(1, 100000) g")

	args := []string{"clean", "-dir", dir}
	code, out, stderr := runDevdb(args...)
	want := regexp.MustCompile("^" + regexp.QuoteMeta("devdb: PostgreSQL in "+dir+" stopped\n"+
		"devdb: removed PostgreSQL data in "+dir+" (") + `\d+ MB\)\n$`)
	if code != 0 || out != "" || !want.MatchString(stderr) {
		t.Errorf("clean: exit %d, stdout %q, stderr %q; want 0, empty, %q", code, out, stderr, want)
	}
	messages(t, args, stderr)
	gone(t, paths)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("clean removed %s itself: %v", dir, err)
	}
	if code, out, _ := runDevdb("url", "-dir", dir); code != 1 || out != "" {
		t.Errorf("url after clean: exit %d, stdout %q; want 1, empty", code, out)
	}

	code, out, stderr = runDevdb(args...)
	if code != 0 || out != "" || stderr != "devdb: no PostgreSQL data in "+dir+"; nothing to remove\n" {
		t.Errorf("second clean: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	code, url, stderr = runDevdb("start", "-dir", dir)
	if code != 0 || !strings.Contains(stderr, "devdb: PostgreSQL started on port") {
		t.Fatalf("start after clean: exit %d, stderr %q; want 0, started", code, stderr)
	}
	_, c = dataOf(t, dir)
	t.Cleanup(func() { c.Remove() })
	var table *string
	query(t, ctx, url, "select to_regclass('t')::text", &table)
	if table != nil {
		t.Errorf("start after clean: table %s is there; want a fresh, empty cluster", *table)
	}
}

func TestCleanNothing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "pg")
	empty := t.TempDir()
	for _, dir := range []string{missing, empty} {
		args := []string{"clean", "-dir", dir}
		code, out, stderr := runDevdb(args...)
		if code != 0 || out != "" || stderr != "devdb: no PostgreSQL data in "+dir+"; nothing to remove\n" {
			t.Errorf("devdb %v: exit %d, stdout %q, stderr %q; want 0, empty, nothing to remove", args, code, out, stderr)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("clean of a missing directory made it (Stat: %v)", err)
	}
	if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
		t.Errorf("clean of an empty directory: it holds %v (%v); want it untouched", ents, err)
	}
}

func TestCleanWithStandby(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	sdir := localpg.StandbyDir(dir)
	if code, _, stderr := runDevdb("start-standby", "-dir", dir); code != 0 {
		t.Fatalf("start-standby: exit %d, stderr %q", code, stderr)
	}
	var paths []string
	for _, d := range []string{sdir, dir} {
		p, c := dataOf(t, d)
		t.Cleanup(func() { c.Remove() })
		paths = append(paths, p...)
	}

	args := []string{"clean", "-dir", dir}
	code, out, stderr := runDevdb(args...)
	want := regexp.MustCompile("^" +
		regexp.QuoteMeta("devdb: PostgreSQL standby in "+sdir+" stopped\n"+
			"devdb: removed PostgreSQL standby data in "+sdir+" (") + `\d+ MB\)\n` +
		regexp.QuoteMeta("devdb: PostgreSQL in "+dir+" stopped\n"+
			"devdb: removed PostgreSQL data in "+dir+" (") + `\d+ MB\)\n$`)
	if code != 0 || out != "" || !want.MatchString(stderr) {
		t.Errorf("clean: exit %d, stdout %q, stderr %q; want 0, empty, %q", code, out, stderr, want)
	}
	messages(t, args, stderr)
	gone(t, paths)
	for _, d := range []string{sdir, dir} {
		if _, err := localpg.Running(d); !errors.Is(err, localpg.ErrNotRunning) {
			t.Errorf("Running(%s) after clean: err = %v, want ErrNotRunning", d, err)
		}
	}
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" ||
		stderr != "devdb: no PostgreSQL server running in "+dir+"\n" {
		t.Errorf("stop after clean: exit %d, stdout %q, stderr %q; want 0, empty, nothing running and no data kept", code, out, stderr)
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
	want := regexp.MustCompile("^" + regexp.QuoteMeta("devdb: PostgreSQL standby in "+sdir+" stopped\n"+
		"devdb: PostgreSQL in "+dir+" stopped\n"+"devdb: its data is kept in "+dir+" (") + `\d+ MB\); make db-clean DEVDB_DIR=.* deletes it\n$`)
	if code, out, stderr := runDevdb("stop", "-dir", dir); code != 0 || out != "" || !want.MatchString(stderr) {
		t.Errorf("stop: exit %d, stdout %q, stderr %q; want 0, empty, %q", code, out, stderr, want)
	}
	if _, err := localpg.Running(sdir); !errors.Is(err, localpg.ErrNotRunning) {
		t.Errorf("Running(%s) after stop: err = %v, want ErrNotRunning", sdir, err)
	}
	if code, _, _ := runDevdb("url", "-dir", dir); code != 1 {
		t.Errorf("url after stop: exit %d, want 1", code)
	}
}
