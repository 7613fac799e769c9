package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/sql/sqltest"
)

// rollupsNow reads every stored rollup row, as text, to compare before and
// after.
func rollupsNow(t *testing.T, db querier) string {
	t.Helper()
	var s string
	if err := db.QueryRow(t.Context(),
		`select coalesce(string_agg(r::text, E'\n' order by r.user_id), '') from dashboard_rollups r`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Retention deletes old sessions in bounded batches and changes no rollup,
// not even a stale one; a cut-off within 8 days is refused.
func TestPruneSessions(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	var sessions []sess
	for d := range 60 { // a session a day for two months
		sessions = append(sessions, sess{at: rfc3339(start.AddDate(0, 0, -d).Add(time.Hour)), secs: 600, score: "0.5"})
	}
	addUser(t, pool, "long-history", sessions...)
	stale := addUser(t, pool, "stale", sess{at: rfc3339(start.AddDate(0, 0, -40)), secs: 60, score: "0.5"})
	// The stale user's rollup stays as stored for an old window.
	if _, err := pool.Exec(t.Context(), `select coco.recompute_rollups(array[$1::uuid], current_date - 30)`, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `insert into erasures values (coco.user_hash('x'), now() - interval '50 days'), (coco.user_hash('y'), now() - interval '1 day')`); err != nil {
		t.Fatal(err)
	}
	before := rollupsNow(t, pool)

	prune := func(before time.Time, limit int) (int, int, error) {
		var n, e int
		err := pool.QueryRow(t.Context(), `select sessions, erasures from coco.prune_sessions($1, $2)`, before, limit).Scan(&n, &e)
		return n, e, err
	}
	if _, _, err := prune(time.Now().AddDate(0, 0, -7), 1000); err == nil || pgError(t, err, "prune 7 days").Code != "CC422" {
		t.Errorf("prune of sessions older than 7 days: %v, want CC422: no window may lose a session", err)
	}
	// The sessions of days 30 to 59, and the stale user's: 31, in batches of 10.
	cutoff := start.AddDate(0, 0, -30).Add(2 * time.Hour)
	var batches []int
	erasures := 0
	for {
		n, e, err := prune(cutoff, 10)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		erasures += e
		if n < 10 {
			break
		}
	}
	if fmt.Sprint(batches) != "[10 10 10 1]" {
		t.Errorf("batches %v, want [10 10 10 1]: at most the limit per call", batches)
	}
	if erasures != 1 {
		t.Errorf("%d erasure records pruned, want the one older than the cut-off", erasures)
	}
	var left int
	if err := pool.QueryRow(t.Context(), `select count(*) from sessions where started_at < $1`, cutoff).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d sessions older than the cut-off left (%v)", left, err)
	}
	if after := rollupsNow(t, pool); after != before {
		t.Errorf("pruning changed rollups:\nbefore %s\nafter  %s", before, after)
	}
	requireFresh(t, pool)
}

// The analysts' role reads everything analysts query and writes nothing.
func TestAnalystRole(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "someone", sess{at: rfc3339(todayStart(t, pool)), secs: 60, score: "0.5"})
	// Roles belong to the whole server: the server's user creates the role
	// (the service's needs CREATEROLE for that), coco.grant_analyst grants,
	// and the checks run as the role.
	var db string
	if err := pool.QueryRow(t.Context(), `select current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(sqltest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = db
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	role := "coco_test_analysts_" + strings.ReplaceAll(id[:8], "-", "")
	if _, err := conn.Exec(t.Context(), `create role `+role+` nologin`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, `drop owned by `+role+`; drop role `+role)
	})
	for range 2 { // idempotent
		if _, err := pool.Exec(t.Context(), `select coco.grant_analyst($1)`, role); err != nil {
			t.Fatalf("grant_analyst: %v", err)
		}
	}
	if _, err := conn.Exec(t.Context(), `set role `+role); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`select count(*) from users`, `select count(*) from sessions`, `select count(*) from dashboard_rollups`,
		`select count(*) from user_settings`, `select count(*) from erasures`,
		`select count(*) from coco.dashboard_overview`, `select count(*) from coco.rollup_drift`,
		`select count(*) from coco.rollup_window('` + id + `'::uuid, current_date)`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Errorf("analyst: %s: %v, want it allowed", q, err)
		}
	}
	for _, q := range []string{
		`insert into users (external_id) values ('intruder')`,
		`update sessions set duration_seconds = 1`,
		`delete from dashboard_rollups`,
		`truncate sessions`,
		`delete from erasures`,
		`select coco.erase_user('someone')`,
		`select * from coco.prune_sessions(now() - interval '100 days', 10)`,
		`select coco.ingest_session('s', 'someone', now(), 60, 0.5)`,
	} {
		_, err := conn.Exec(t.Context(), q)
		if err == nil || pgError(t, err, q).Code != "42501" {
			t.Errorf("analyst: %s: %v, want permission denied (42501)", q, err)
		}
	}
}

// Only a user created after an erasure of its id looks at erasures when it
// ingests; every other user is locked in one lookup. So the flag that
// tells them apart must be right however the user was created, and users
// from before the flag existed (null) are sorted out on their first ingest.
func TestErasedBeforeFlag(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	ctx := t.Context()
	flag := func(ext string) string {
		t.Helper()
		var f *bool
		if err := pool.QueryRow(ctx, `select erased_before from users where external_id = $1`, ext).Scan(&f); err != nil {
			t.Fatalf("%s's erased_before: %v", ext, err)
		}
		if f == nil {
			return "null"
		}
		return fmt.Sprint(*f)
	}
	ingest := func(sid, ext string, started time.Time) string {
		t.Helper()
		var status string
		err := pool.QueryRow(ctx, `select coco.ingest_session($1, $2, $3, 60, 0.5)`, sid, ext, started).Scan(&status)
		if err != nil {
			return pgError(t, err, "ingest "+sid).Code
		}
		return status
	}
	now := time.Now().Truncate(time.Second)
	for _, ext := range []string{"erased", "psql-erased", "never"} {
		if got := ingest(ext+"-1", ext, now.Add(-3*time.Hour)); got != "ok" {
			t.Fatalf("first ingest of %s: %s", ext, got)
		}
	}
	if flag("never") != "false" {
		t.Errorf("a new user's erased_before is %s, want false", flag("never"))
	}
	if _, err := pool.Exec(ctx, `select coco.erase_user('erased', $1), coco.erase_user('psql-erased', $1)`, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	// Created again by an ingest after the erasure, or by a plain INSERT.
	if got := ingest("erased-2", "erased", now.Add(-time.Hour)); got != "ok" {
		t.Fatalf("an ingest after the erasure: %s, want ok", got)
	}
	if _, err := pool.Exec(ctx, `insert into users (external_id) values ('psql-erased')`); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"erased", "psql-erased"} {
		if flag(ext) != "true" {
			t.Errorf("%s, created after its erasure: erased_before %s, want true", ext, flag(ext))
		}
		if got := ingest(ext+"-old", ext, now.Add(-150*time.Minute)); got != "CC410" {
			t.Errorf("%s's session from before the erasure: %s, want CC410", ext, got)
		}
	}

	// Users from before the flag: looked up once, then flagged.
	if _, err := pool.Exec(ctx, `update users set erased_before = null`); err != nil {
		t.Fatal(err)
	}
	if got := ingest("erased-old-again", "erased", now.Add(-150*time.Minute)); got != "CC410" {
		t.Errorf("an unflagged user created after its erasure, session from before it: %s, want CC410", got)
	}
	if got := ingest("never-2", "never", now.Add(-time.Hour)); got != "ok" {
		t.Errorf("an unflagged user never erased: %s, want ok", got)
	}
	if flag("never") != "false" {
		t.Errorf("after an ingest, an unflagged user never erased has erased_before %s, want false", flag("never"))
	}
	if got := ingest("erased-3", "erased", now.Add(-30*time.Minute)); got != "ok" || flag("erased") != "true" {
		t.Errorf("after an ingest, an unflagged user created after its erasure: %s with erased_before %s, want ok and true", got, flag("erased"))
	}
}
