package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

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
