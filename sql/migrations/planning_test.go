package migrations_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"coco/sql/sqltest"
)

// PostgreSQL plans a SQL function it cannot inline afresh at every call
// (see 008_planned_once.sql). The SQL functions that the dashboard read and
// the ingest's erasure check call must melt into the caller's plan, so
// their generic plans (what a cached plan runs for any argument) name no
// coco function.
func TestHotStatementsInlineTheirFunctions(t *testing.T) {
	t.Parallel()
	conn, err := sqltest.Pool(t).Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), `set plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	statements := map[string]string{
		"dashboard read": `prepare dashboard_read(text, timestamptz) as select * from coco.fresh_snapshot($1, $2);
			explain verbose execute dashboard_read('grandma', now())`,
		"erasure check": `prepare erasure_check(text) as select e.erased_at from erasures e where e.user_hash = coco.user_hash($1);
			explain verbose execute erasure_check('grandma')`,
	}
	for name, statements := range statements {
		results, err := conn.Conn().PgConn().Exec(t.Context(), statements).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan strings.Builder
		for _, row := range results[len(results)-1].Rows {
			plan.Write(row[0])
			plan.WriteByte('\n')
		}
		if !strings.Contains(plan.String(), "$1") {
			t.Fatalf("%s: not a generic plan:\n%s", name, plan.String())
		}
		if strings.Contains(plan.String(), "coco.") {
			t.Errorf("%s calls a coco function instead of inlining it:\n%s", name, plan.String())
		}
	}
}

// A function that plans its statements once keeps the plan for the life of
// the connection, and a new database's first plans are made while its
// tables are small and have no statistics: a plan that scans a whole table
// then reads every user at each call as the service grows (migration 12).
// So the paths of every device post and read (single ingests, with and
// without a time zone, and dashboard reads) run on a fresh database until
// their plans are cached, the tables grow, and the same paths then scan no
// table. (A batch reads the erasures, and the settings for the zones it
// names, as whole tables when that is the cheaper plan for its size.)
func TestCachedPlansOfAFreshDatabaseScanNoTable(t *testing.T) {
	t.Parallel()
	conn, err := sqltest.Pool(t).Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(t.Context(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now().Add(-time.Hour)
	rounds := func(from int) {
		for i := from; i < from+10; i++ {
			user := fmt.Sprintf("fresh-%d", i%5) // new users, then the same ones again
			exec(`select coco.ingest_session($1, $2, $3, 600, 0.5)`, fmt.Sprintf("single-%d", i), user, started)
			exec(`select coco.ingest_session($1, $2, $3, 600, 0.5, $4)`, fmt.Sprintf("zoned-%d", i), "zoned-"+user,
				started.Add(time.Duration(i)*time.Second), []string{"UTC", "Europe/Paris"}[i%2])
			exec(`select * from coco.fresh_snapshot($1, now())`, user)
		}
	}
	rounds(0)
	exec(`insert into users (external_id) select 'grown-' || g from generate_series(1, 20000) g`)
	exec(`insert into user_settings (user_id, effective_from, time_zone, day_starts_at)
		select id, now() - interval '3 days', 'Europe/Paris', '00:00' from users where external_id like 'grown-%'`)
	exec(`insert into erasures (user_hash, erased_at)
		select coco.user_hash('gone-' || g), now() - interval '1 day' from generate_series(1, 5000) g`)
	// Counted into Go, not into a temporary table: the session's first
	// temporary table would invalidate every cached plan.
	seqScans := func() map[string]int64 {
		t.Helper()
		var scans map[string]int64
		if err := tx.QueryRow(t.Context(), `select coalesce(jsonb_object_agg(relname, seq_scan), '{}')
			from pg_stat_xact_user_tables`).Scan(&scans); err != nil {
			t.Fatal(err)
		}
		return scans
	}
	before := seqScans()
	rounds(100)
	var scans []string
	for table, n := range seqScans() {
		if n > before[table] {
			scans = append(scans, fmt.Sprintf("%s: %d", table, n-before[table]))
		}
	}
	if len(scans) > 0 {
		t.Errorf("sequential scans in 10 rounds of ingests and reads after the tables grew: %v", scans)
	}
}
