package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A database that cannot take the write now (a full disk, no memory, a
// failing disk) is a 503 with Retry-After: the device keeps the session and
// sends it again later. The conditions come from a trigger that raises them
// with their real SQLSTATE, as a quota would, through the real driver.
func TestResourceErrorsAre503WithRetryAfter(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"disk_full", "out_of_memory", "insufficient_resources", "io_error", "configuration_limit_exceeded"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			ts := setup(t)
			if _, err := ts.pool.Exec(t.Context(), `
				create function refuse_writes() returns trigger language plpgsql as $$
				begin
					raise exception 'could not extend file "base/1/2": No space left on device' using errcode = '`+code+`';
				end;
				$$;
				create trigger quota before insert on sessions for each statement execute function refuse_writes();`); err != nil {
				t.Fatal(err)
			}
			rec := ts.ingest(t, summaryJSON("full-1", "alice", time.Now().Add(-time.Minute), 60, 0.5))
			expectStatus(t, rec, http.StatusServiceUnavailable)
			expectBody(t, rec, `{"detail":"database unavailable"}`)
			expectHeader(t, rec, "Retry-After", "1")
			// Reads still work.
			expectStatus(t, ts.dashboard(t, "alice", aliceToken), http.StatusOK)
		})
	}
}

// A server that closes idle connections (idle_session_timeout here; a
// restart or a proxy's idle cut alike) leaves dead connections in the pool.
// The request that draws one is retried on a fresh connection, not
// answered with an error.
func TestConnectionClosedWhileIdleIsRetried(t *testing.T) {
	t.Parallel()
	base := setup(t)
	if _, err := base.pool.Exec(t.Context(),
		`do $$ begin execute format('alter database %I set idle_session_timeout = 200', current_database()); end $$`); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), base.pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ts := newTestServer(t, pool, testConfig())
	for i := range 6 {
		time.Sleep(400 * time.Millisecond) // the pooled connection times out meanwhile
		if i%2 == 0 {
			expectStatus(t, ts.dashboard(t, "alice", aliceToken), http.StatusOK)
		} else {
			expectStatus(t, ts.ingest(t, summaryJSON("idle-"+string(rune('a'+i)), "alice", time.Now().Add(-time.Minute), 60, 0.5)), http.StatusOK)
		}
	}
}
