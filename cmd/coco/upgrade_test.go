package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"coco/internal/gitbuild"
	"coco/internal/localpg"
	"coco/sql/migrations"
	"coco/sql/sqltest"
)

// previousRelease is the commit of the release before this round's
// migrations (003 on). A rolling deploy migrates while that release still
// serves, so its binary must keep working against the newest schema; drop
// this test only in the release that contracts what it still uses.
const previousRelease = "630c7a758a922b6ffac42c7de90eaef94f60afbc"

var (
	previousOnce sync.Once
	previousBin  string
	previousErr  error
)

// previousBinary builds the previous release's coco from git history, once.
func previousBinary(t *testing.T) string {
	t.Helper()
	previousOnce.Do(func() {
		previousBin, previousErr = gitbuild.Coco(context.Background(), previousRelease, filepath.Join(binDir, "previous"))
	})
	if previousErr != nil {
		t.Fatal(previousErr)
	}
	return previousBin
}

// schemaDump is pg_dump --schema-only of the database at url, without the
// comments that name the dumped database and the \restrict lines (newer
// pg_dump releases) that carry a random key.
func schemaDump(t *testing.T, url string) string {
	t.Helper()
	pgDump, err := localpg.Tool("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pgDump, "--schema-only", "--no-owner", "--no-privileges", url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var kept []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "--") && !strings.HasPrefix(line, `\restrict`) && !strings.HasPrefix(line, `\unrestrict`) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// A database the previous release created, then migrated by this one, must
// be exactly a database this one created: migrations replay the same way
// everywhere.
func TestUpgradedSchemaEqualsAFreshOne(t *testing.T) {
	t.Parallel()
	upgraded, fresh := sqltest.EmptyURL(t, ""), sqltest.EmptyURL(t, "")
	if r := runBinary(t, previousBinary(t), map[string]string{"DATABASE_URL": upgraded}, "migrate"); r.code != 0 {
		t.Fatalf("previous release's migrate = %d %s", r.code, r.stderr)
	}
	for _, url := range []string{upgraded, fresh} {
		if r := runCoco(t, map[string]string{"DATABASE_URL": url}, "migrate"); r.code != 0 {
			t.Fatalf("migrate = %d %s", r.code, r.stderr)
		}
	}
	if up, fr := schemaDump(t, upgraded), schemaDump(t, fresh); up != fr {
		t.Errorf("the upgraded schema differs from a fresh one:\n%s", lineDiff(up, fr))
	}
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// The previous release, serving from a database migrated by this one (a
// rolling deploy's first minutes), still answers every call of its
// contract, and the same as this release does.
func TestPreviousReleaseServesTheNewSchema(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	env := serveEnv(dbURL)
	old := startServeBinary(t, previousBinary(t), env)
	current := startServe(t, env)

	if status, body := call(t, http.MethodGet, old.base+"/readyz", "", ""); status != http.StatusOK {
		t.Fatalf("previous release's /readyz = %d %s, want 200: the newer schema still serves it", status, body)
	}
	start := sessionToday()
	summary := func(id string, secs int) string {
		return fmt.Sprintf(`{"session_id":%q,"user_external_id":"kid-1","started_at":%q,"duration_seconds":%d,"sentiment_score":0.7}`,
			id, start.Format(time.RFC3339), secs)
	}
	for _, step := range []struct {
		body   string
		status int
		want   string
	}{
		{summary("prev-1", 600), 200, `{"status":"ok"}`},
		{summary("prev-1", 600), 200, `{"status":"duplicate"}`},
		{summary("prev-1", 601), 409, `"status":"conflict"`},
		{summary("prev-2", 60), 200, `{"status":"ok"}`},
	} {
		status, body := call(t, http.MethodPost, old.base+"/internal/ingest/session_summary", ingestToken, step.body)
		if status != step.status || !strings.Contains(body, step.want) {
			t.Errorf("previous release's ingest = %d %s, want %d %s", status, body, step.status, step.want)
		}
	}

	oldReply, err := send(testClient, http.MethodGet, old.base+"/api/dashboard/kid-1", dashboardToken, "")
	if err != nil || oldReply.status != http.StatusOK {
		t.Fatalf("previous release's dashboard = %+v, %v; want 200", oldReply, err)
	}
	_, newBody := call(t, http.MethodGet, current.base+"/api/dashboard/kid-1", dashboardToken, "")
	if oldReply.body != newBody {
		t.Errorf("dashboards differ:\nprevious release %s\n    this release %s", oldReply.body, newBody)
	}
	var d dashboard
	if err := json.Unmarshal([]byte(oldReply.body), &d); err != nil || d.AvgDuration.DailyDurations[6] != 11 || d.Streak.Days != 1 {
		t.Errorf("previous release's dashboard %s: want 11 minutes today and a streak of 1", oldReply.body)
	}
	req, _ := http.NewRequest(http.MethodGet, old.base+"/api/dashboard/kid-1", nil)
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	req.Header.Set("If-None-Match", oldReply.header.Get("ETag"))
	if resp, err := testClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("previous release's If-None-Match = %v, %v; want 304", resp, err)
	} else {
		resp.Body.Close()
	}

	// Its reads of unknown users no longer write either.
	if status, body := call(t, http.MethodGet, old.base+"/api/dashboard/nobody-here", adminToken, ""); status != http.StatusOK ||
		!strings.Contains(body, `"days":0`) {
		t.Errorf("previous release's read of an unknown user = %d %s, want the empty state", status, body)
	}
	pool := openTestPool(t, dbURL)
	var strangers int
	if err := pool.QueryRow(t.Context(), `select count(*) from users where external_id = 'nobody-here'`).Scan(&strangers); err != nil || strangers != 0 {
		t.Errorf("previous release's read created %d users (%v), want none", strangers, err)
	}

	// Its operator commands refuse a newer schema and say so, rather than
	// act on it: operators run the new release's.
	cmdEnv := map[string]string{"DATABASE_URL": dbURL}
	for _, args := range [][]string{{"migrate"}, {"recompute", "-all"}, {"seed-demo", "-user", "demo-old"}} {
		r := runBinary(t, previousBinary(t), cmdEnv, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "version") {
			t.Errorf("previous release's %v = %d %s, want 1 and a refusal naming the versions", args, r.code, r.stderr)
		}
	}
	var drift int
	if err := pool.QueryRow(t.Context(), `select count(*) from coco.rollup_drift`).Scan(&drift); err != nil || drift != 0 {
		t.Errorf("%d rollups drift from their sessions (%v) after the previous release's writes, want none", drift, err)
	}
	if got, err := migrationsVersion(t, dbURL); err != nil || got != migrations.ExpectedVersion() {
		t.Errorf("schema version %d (%v) after the previous release ran, want still %d", got, err, migrations.ExpectedVersion())
	}
}

func migrationsVersion(t *testing.T, dbURL string) (int32, error) {
	t.Helper()
	var v int32
	err := openTestPool(t, dbURL).QueryRow(t.Context(), `select version from `+migrations.VersionTable).Scan(&v)
	return v, err
}
