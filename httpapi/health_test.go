package httpapi

import (
	"net/http"
	"testing"
	"time"
)

func TestProbesOnAWorkingDatabase(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	for path, want := range map[string]string{
		"/livez":   `{"status":"ok"}`,
		"/healthz": `{"status":"ok"}`,
		"/readyz":  `{"status":"ready","windowDays":7}`,
	} {
		rec := ts.request(t, http.MethodGet, path, "")
		expectStatus(t, rec, http.StatusOK)
		expectBody(t, rec, want)
		expectHeader(t, rec, "Cache-Control", "no-store")
	}
}

func TestReadyzAnswers503WhileDraining(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	expectStatus(t, ts.request(t, http.MethodGet, "/readyz", ""), http.StatusOK)
	ts.StartDraining()
	rec := ts.request(t, http.MethodGet, "/readyz", "")
	expectStatus(t, rec, http.StatusServiceUnavailable)
	expectBody(t, rec, `{"detail":"shutting down"}`)
	// Draining is not dying: the other probes and routes still answer.
	expectStatus(t, ts.request(t, http.MethodGet, "/livez", ""), http.StatusOK)
	expectStatus(t, ts.request(t, http.MethodGet, "/healthz", ""), http.StatusOK)
}

func TestReadyzComparesTheSchemaVersion(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	setVersion := func(v int32) {
		t.Helper()
		if _, err := ts.pool.Exec(t.Context(), `update public.schema_version set version = $1`, v); err != nil {
			t.Fatal(err)
		}
	}

	// A newer schema (the release step of a rolling deploy already ran)
	// keeps this older replica in service.
	setVersion(ts.expectedVersion + 1)
	expectStatus(t, ts.request(t, http.MethodGet, "/readyz", ""), http.StatusOK)

	setVersion(ts.expectedVersion - 1)
	rec := ts.request(t, http.MethodGet, "/readyz", "")
	expectStatus(t, rec, http.StatusServiceUnavailable)
	if rec.Body.String() == "" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("503 body %q, want a JSON detail", rec.Body)
	}
}

func TestProbesOnADeadDatabase(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	expectStatus(t, ts.request(t, http.MethodGet, "/livez", ""), http.StatusOK)
	for _, path := range []string{"/healthz", "/readyz"} {
		rec := ts.request(t, http.MethodGet, path, "")
		expectStatus(t, rec, http.StatusServiceUnavailable)
		expectBody(t, rec, `{"detail":"database unavailable"}`)
		expectHeader(t, rec, "Retry-After", "1")
	}
}

// A database that accepts connections and then says nothing must still give
// a 503 within the request deadline, on every route that uses it.
func TestSilentDatabaseIs503WithinTheDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ts := setupSilentDB(t, timeout)
	for _, tc := range []struct{ name, method, path, token, body string }{
		{"healthz", http.MethodGet, "/healthz", "", ""},
		{"readyz", http.MethodGet, "/readyz", "", ""},
		{"dashboard", http.MethodGet, "/api/dashboard/alice", aliceToken, ""},
		{"ingest", http.MethodPost, "/internal/ingest/session_summary", ingestToken, summaryJSON("s-silent", "alice", time.Now(), 60, 0.5)},
	} {
		start := time.Now()
		rec := ts.request(t, tc.method, tc.path, tc.body, "Authorization", "Bearer "+tc.token)
		elapsed := time.Since(start)
		expectStatus(t, rec, http.StatusServiceUnavailable)
		expectBody(t, rec, `{"detail":"database unavailable"}`)
		if elapsed > timeout+time.Second {
			t.Errorf("%s took %v with a %v deadline", tc.name, elapsed, timeout)
		}
	}
}
