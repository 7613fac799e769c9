package migrations_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/sql/sqltest"
	"coco/sql/store"
)

func TestDashboardShiftsStoredWindowToToday(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "shifted",
		sess{at: "2026-03-03T12:00:00Z", secs: 120, score: "0.9"}, // in yesterday's window only
		sess{at: "2026-03-09T12:00:00Z", secs: 60, score: "0.2"},
	)

	yesterday := dashboardAt(t, pool, "shifted", "2026-03-09")
	wantYesterday := rollup{
		WindowEnd:   "2026-03-09",
		Streak:      1,
		Activity:    activity("x.....x"),
		Durations:   []int{2, 0, 0, 0, 0, 0, 1},
		Sentiment:   "0.90 - - - - - 0.20",
		LastSession: timeOf(t, "2026-03-09T12:01:00Z"),
		AvgMinutes:  2, // mean 1.5
		Tone:        "negative",
	}
	if d := yesterday.diff(wantYesterday); d != "" {
		t.Fatalf("dashboard for 2026-03-09: %s", d)
	}

	today := dashboardAt(t, pool, "shifted", day)
	wantToday := rollup{
		WindowEnd:   day,
		Streak:      0,
		Activity:    activity(".....x."),
		Durations:   []int{0, 0, 0, 0, 0, 1, 0},
		Sentiment:   "- - - - - 0.20 -",
		LastSession: timeOf(t, "2026-03-09T12:01:00Z"),
		AvgMinutes:  1,
		Tone:        "negative",
	}
	if d := today.diff(wantToday); d != "" {
		t.Errorf("dashboard for %s after one for 2026-03-09 (must not serve the old window): %s", day, d)
	}
	if d := stored(t, pool, id).diff(wantToday); d != "" {
		t.Errorf("stored rollup after the read for %s (want the shifted window stored): %s", day, d)
	}
}

func TestRefreshStaleRollups(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	behind := addUser(t, pool, "behind", sess{at: "2026-03-10T12:00:00Z", secs: 300, score: "0.5"})
	dashboardAt(t, pool, "behind", "2026-03-09") // stored for yesterday's window
	current := addUser(t, pool, "current")
	dashboardAt(t, pool, "current", day)
	var missing string // a user typed in psql has no rollup at all
	if err := pool.QueryRow(t.Context(), `insert into users (external_id) values ('missing') returning id::text`).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	var currentUpdated time.Time
	if err := pool.QueryRow(t.Context(), `select updated_at from dashboard_rollups where user_id = $1::uuid`, current).Scan(&currentUpdated); err != nil {
		t.Fatal(err)
	}

	var n int
	if err := pool.QueryRow(t.Context(), `select coco.refresh_stale_rollups($1::date)`, day).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("refresh_stale_rollups(%s) = %d, want 2 (behind and missing)", day, n)
	}
	if got := stored(t, pool, behind); got.WindowEnd != day || !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 0, 5}) {
		t.Errorf("refreshed rollup of behind: window_end %s, daily_durations %v; want %s, [0 0 0 0 0 0 5]", got.WindowEnd, got.Durations, day)
	}
	if got := stored(t, pool, missing); got.WindowEnd != day || got.Tone != "neutral" {
		t.Errorf("refreshed rollup of missing: window_end %s, tone %s; want %s, neutral", got.WindowEnd, got.Tone, day)
	}
	var updated time.Time
	if err := pool.QueryRow(t.Context(), `select updated_at from dashboard_rollups where user_id = $1::uuid`, current).Scan(&updated); err != nil {
		t.Fatal(err)
	}
	if !updated.Equal(currentUpdated) {
		t.Errorf("updated_at of the current rollup moved from %s to %s; want it left alone", currentUpdated, updated)
	}

	if err := pool.QueryRow(t.Context(), `select coco.refresh_stale_rollups($1::date)`, day).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("second refresh_stale_rollups(%s) = %d, want 0", day, n)
	}
}

func TestDashboardOverviewShowsStale(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	ctx := t.Context()
	// The view judges staleness against the real today.
	for _, q := range []string{
		`select coco.recompute_rollups(array[coco.ensure_user('yesterdays')], coco.today() - 1)`,
		`select coco.recompute_rollups(array[coco.ensure_user('todays')], coco.today())`,
		`insert into users (external_id) values ('never')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	overview := func() map[string]bool {
		t.Helper()
		rows, err := pool.Query(ctx, `select external_id, is_stale from coco.dashboard_overview`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]bool{}
		for rows.Next() {
			var ext string
			var isStale bool
			if err := rows.Scan(&ext, &isStale); err != nil {
				t.Fatal(err)
			}
			got[ext] = isStale
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}

	got := overview()
	want := map[string]bool{"yesterdays": true, "todays": false, "never": true}
	for ext, w := range want {
		if g, ok := got[ext]; !ok || g != w {
			t.Errorf("dashboard_overview is_stale for %s = %v (listed %v), want %v", ext, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("dashboard_overview has %d rows, want one per user (%d)", len(got), len(want))
	}

	var n int
	if err := pool.QueryRow(ctx, `select coco.refresh_stale_rollups()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("refresh_stale_rollups() = %d, want 2", n)
	}
	for ext, isStale := range overview() {
		if isStale {
			t.Errorf("dashboard_overview is_stale for %s after refresh_stale_rollups() = true, want false", ext)
		}
	}
}

func TestDashboardVersion(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	addUser(t, pool, "versioned", sess{at: "2026-03-10T12:00:00Z", secs: 300, score: "0.5"})
	version := func(ext, today string) (time.Time, bool) {
		var v time.Time
		err := pool.QueryRow(t.Context(), `select v from coco.dashboard_version($1, $2::date) v`, ext, today).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return v, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return v, true
	}

	dashboardAt(t, pool, "versioned", day)
	var updatedAt time.Time
	if err := pool.QueryRow(t.Context(),
		`select r.updated_at from dashboard_rollups r join users u on u.id = r.user_id where u.external_id = 'versioned'`,
	).Scan(&updatedAt); err != nil {
		t.Fatal(err)
	}
	if v, ok := version("versioned", day); !ok || !v.Equal(updatedAt) {
		t.Errorf("dashboard_version on the stored window = %v, %t; want the stored updated_at %v", v, ok, updatedAt)
	}
	if v, ok := version("versioned", "2026-03-11"); ok {
		t.Errorf("dashboard_version on the next day = %v; want no row, the stored window is outdated", v)
	}
	if v, ok := version("nobody", day); ok {
		t.Errorf("dashboard_version of an unknown user = %v; want no row", v)
	}
	var users int
	if err := pool.QueryRow(t.Context(), `select count(*) from users where external_id = 'nobody'`).Scan(&users); err != nil || users != 0 {
		t.Errorf("dashboard_version created %d users (err %v); want it to only read", users, err)
	}
}

func TestUpdatedAtIncreasesWithEveryChangeInOneTransaction(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "busy")
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	// Both statements share the transaction's now(); the snapshots differ,
	// so their updated_at (the dashboard's ETag) must too.
	var seen []time.Time
	for i, secs := range []int{60, 120} {
		if _, err := tx.Exec(t.Context(),
			`insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
			 values ($1, $2::uuid, now(), $3, 0.5)`, fmt.Sprintf("busy-%d", i), id, secs); err != nil {
			t.Fatal(err)
		}
		var at time.Time
		if err := tx.QueryRow(t.Context(), `select updated_at from dashboard_rollups where user_id = $1::uuid`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, at)
	}
	if !seen[1].After(seen[0]) {
		t.Errorf("updated_at after two changes in one transaction: %v then %v; want strictly increasing", seen[0], seen[1])
	}
}

func TestBulkRecomputesGoInBatches(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	st := store.NewStore(pool)
	const users = 1234 // more than two batches
	if _, err := pool.Exec(t.Context(),
		`insert into users (external_id) select 'bulk-' || i from generate_series(1, $1) i`, users); err != nil {
		t.Fatal(err)
	}

	var n int
	if err := pool.QueryRow(t.Context(), `select coco.refresh_stale_rollups(p_limit => 3)`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("refresh_stale_rollups(p_limit => 3) = %d, %v; want 3", n, err)
	}
	var progress []int
	record := func(done int) { progress = append(progress, done) }
	if n, err := st.RefreshStale(t.Context(), time.Now(), record); err != nil || n != users-3 || fmt.Sprint(progress) != "[500 1000]" {
		t.Errorf("RefreshStale = %d, %v, progress %v; want the %d users still without a rollup, in batches of 500", n, err, progress, users-3)
	}
	if n, err := st.RecomputeAll(t.Context(), func(int) {}); err != nil || n != users {
		t.Errorf("RecomputeAll = %d, %v; want every one of the %d users", n, err, users)
	}
	var rollups int
	if err := pool.QueryRow(t.Context(), `select count(*) from dashboard_rollups where window_end = coco.today()`).Scan(&rollups); err != nil || rollups != users {
		t.Errorf("%d rollups for today (err %v); want %d", rollups, err, users)
	}
}
