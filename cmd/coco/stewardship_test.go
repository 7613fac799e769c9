package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"coco/sql/sqltest"
)

// peakKiB is the high-water resident set size of process pid.
func peakKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the RSS from: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// An export of a user with 100 000 sessions is complete, valid JSON, and
// streamed: coco's memory stays where it was.
func TestExportStreamsALongHistory(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	pool := openTestPool(t, dbURL)
	const sessions = 100_000
	if _, err := pool.Exec(t.Context(), `
		insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
		select 'long-' || i, coco.ensure_user('long-history'), now() - make_interval(mins => i), 60, 0.5
		from generate_series(1, $1) i`, sessions); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, serveEnv(dbURL))
	go func() {
		for range p.lines {
		}
	}()
	// One small export first, so what is measured is the long one alone.
	if status, _ := call(t, http.MethodGet, p.base+"/internal/users/long-history/settings", ingestToken, ""); status != http.StatusOK {
		t.Fatalf("settings = %d", status)
	}
	before := peakKiB(t, p.cmd.Process.Pid)

	req, _ := http.NewRequest(http.MethodGet, p.base+"/internal/users/long-history/export", nil)
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		UserID   string            `json:"user_id"`
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if resp.StatusCode != http.StatusOK || doc.UserID != "long-history" || len(doc.Sessions) != sessions {
		t.Fatalf("export: %d, user %q, %d sessions; want 200 and all %d", resp.StatusCode, doc.UserID, len(doc.Sessions), sessions)
	}
	// The document is about 15 MB; held in memory it would take coco's
	// peak up by twice that. Streamed, what remains is the garbage
	// collector's headroom over the rows in flight: 3 to 6 MiB measured.
	if grew := peakKiB(t, p.cmd.Process.Pid) - before; grew > 8<<10 {
		t.Errorf("coco's peak RSS grew by %d KiB during the export, want a few MiB at most", grew)
	}

	r := runCoco(t, map[string]string{"DATABASE_URL": dbURL}, "export", "-user", "long-history")
	var cli struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cli); r.code != 0 || err != nil || len(cli.Sessions) != sessions {
		t.Errorf("coco export = %d (%v), %d sessions; want 0 and all %d", r.code, err, len(cli.Sessions), sessions)
	}
	if r := runCoco(t, map[string]string{"DATABASE_URL": dbURL}, "export", "-user", "nobody"); r.code != 1 {
		t.Errorf("coco export of an unknown user = %d, want 1", r.code)
	}
}

func TestEraseAndPruneCommands(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	pool := openTestPool(t, dbURL)
	if _, err := pool.Exec(t.Context(), `
		insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
		select 'cli-' || i, coco.ensure_user(case when i <= 3 then 'to-erase' else 'keeper' end),
		       now() - make_interval(days => i * 10), 60, 0.5
		from generate_series(1, 8) i`); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": dbURL}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"erase", "-user", "to-erase"}, 0, "erased to-erase: 3 sessions\n", ""},
		{[]string{"erase", "-user", "to-erase"}, 0, "erased to-erase: 0 sessions\n", ""},
		{[]string{"erase", "-user", "never-seen"}, 1, "", `no user with external id "never-seen"`},
		{[]string{"erase", "-user", "*"}, 2, "", "-user must name one user"},
		{[]string{"prune", "-older-than", "7d"}, 1, "", "the cut-off must be at least 8 days ago"},
		{[]string{"prune", "-older-than", "soon"}, 2, "", "-older-than must be an age"},
		// keeper's sessions 4..8 started 40 to 80 days ago: those older than 45 days are 5..8.
		{[]string{"prune", "-older-than", "45d", "-batch", "3"}, 0, "pruned 4 sessions and 0 erasure records", "4 sessions so far"},
	} {
		r := runCoco(t, env, tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("coco %v = %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}
