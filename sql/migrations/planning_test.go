package migrations_test

import (
	"strings"
	"testing"

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
