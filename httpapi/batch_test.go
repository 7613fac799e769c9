package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// postBatch posts body to the batch route with the ingest token; headers
// are name, value pairs added to the request.
func (ts *testServer) postBatch(t *testing.T, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodPost, "/internal/ingest/session_summaries", body,
		append([]string{"Authorization", "Bearer " + ingestToken, "Content-Type", "application/json"}, headers...)...)
}

// batchJSON wraps session summaries (JSON objects) in the envelope.
func batchJSON(items ...string) string {
	return `{"sessions":[` + strings.Join(items, ",") + `]}`
}

type batchAnswer struct {
	Results []struct {
		SessionID *string         `json:"session_id"`
		Index     *int            `json:"index"`
		Status    string          `json:"status"`
		Detail    json.RawMessage `json:"detail"`
	} `json:"results"`
	OK, Duplicate, Conflict, Invalid, Gone int
}

func decodeBatchAnswer(t *testing.T, rec *httptest.ResponseRecorder) batchAnswer {
	t.Helper()
	expectStatus(t, rec, http.StatusOK)
	var a batchAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("batch answer %s: %v", rec.Body, err)
	}
	return a
}

// statuses lists the results' statuses in order, e.g. "ok ok duplicate".
func (a batchAnswer) statuses() string {
	var s []string
	for _, r := range a.Results {
		s = append(s, r.Status)
	}
	return strings.Join(s, " ")
}

func (ts *testServer) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := ts.pool.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// countRollupWrites installs a test-only counter of writes to
// dashboard_rollups, per user, and returns a function reading it.
func countRollupWrites(t *testing.T, ts *testServer) func(user string) int {
	t.Helper()
	if _, err := ts.pool.Exec(t.Context(), `
		create table rollup_writes (user_id uuid);
		create function count_rollup_write() returns trigger language plpgsql as $$
		begin insert into rollup_writes values (new.user_id); return null; end $$;
		create trigger count_rollup_writes after insert or update on dashboard_rollups
			for each row execute function count_rollup_write();`); err != nil {
		t.Fatal(err)
	}
	return func(user string) int {
		return ts.count(t, `select count(*) from rollup_writes w join users u on u.id = w.user_id where u.external_id = $1`, user)
	}
}

// A week of backlog for three users in one batch: the same rollups as
// sending the sessions one by one, each user's rollup written once.
func TestBatchOfAWeekEqualsSingleIngests(t *testing.T) {
	t.Parallel()
	batched, single := setup(t), setup(t)
	writes, singleWrites := countRollupWrites(t, batched), countRollupWrites(t, single)
	now := time.Now().UTC().Truncate(time.Second)
	var items []string
	for i := range 300 {
		user := fmt.Sprintf("kid-%d", i%3)
		started := now.Add(-time.Duration(i*33+5) * time.Minute) // over the last week
		items = append(items, summaryJSON(fmt.Sprintf("week-%d", i), user, started, 60+i*7, float64(i%101)/100))
	}
	a := decodeBatchAnswer(t, batched.postBatch(t, batchJSON(items...)))
	if a.OK != 300 || a.Duplicate+a.Conflict+a.Invalid+a.Gone != 0 || len(a.Results) != 300 {
		t.Fatalf("batch of 300 new sessions: %d ok of %d results (%+v), want all ok", a.OK, len(a.Results), a)
	}
	for _, item := range items {
		expectStatus(t, single.ingest(t, item), http.StatusOK)
	}
	for i := range 3 {
		user := fmt.Sprintf("kid-%d", i)
		got := withoutLastUpdated(t, batched.dashboard(t, user, adminToken))
		want := withoutLastUpdated(t, single.dashboard(t, user, adminToken))
		if got != want {
			t.Errorf("dashboard of %s after one batch:\n%s\nafter single ingests:\n%s", user, got, want)
		}
		if n := writes(user); n != 1 {
			t.Errorf("%s's rollup was written %d times for one batch, want once", user, n)
		}
		if n := singleWrites(user); n < 90 {
			t.Errorf("%s's rollup was written %d times for 100 single ingests, want one per ingest that changed it (at least 90): the counter counts each", user, n)
		}
	}
	expectRollupsFresh(t, batched)
}

// Resending a whole batch is safe: every item is a duplicate and nothing
// changes, not even lastUpdated and the ETag.
func TestBatchResentIsAllDuplicates(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	body := batchJSON(summaryJSON("r-1", "alice", started, 60, 0.5), summaryJSON("r-2", "alice", started.Add(time.Minute), 90, 0.7))
	first := decodeBatchAnswer(t, ts.postBatch(t, body))
	before := ts.dashboard(t, "alice", aliceToken)
	again := decodeBatchAnswer(t, ts.postBatch(t, body))
	after := ts.dashboard(t, "alice", aliceToken)
	if first.statuses() != "ok ok" || again.statuses() != "duplicate duplicate" || again.Duplicate != 2 {
		t.Errorf("first %q, resent %q (%d duplicates); want ok ok, then duplicate duplicate", first.statuses(), again.statuses(), again.Duplicate)
	}
	if before.Body.String() != after.Body.String() || before.Header().Get("ETag") != after.Header().Get("ETag") {
		t.Errorf("the resend changed the dashboard:\n%s %s\n%s %s", before.Body, before.Header().Get("ETag"), after.Body, after.Header().Get("ETag"))
	}
}

// A mixed batch: each item's own result, in order, and the counts.
func TestBatchMixedResults(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	expectStatus(t, ts.ingest(t, summaryJSON("stored-1", "alice", started, 60, 0.5)), http.StatusOK)
	a := decodeBatchAnswer(t, ts.postBatch(t, batchJSON(
		summaryJSON("new-1", "bob", started, 120, 0.6),     // 0 ok
		`{"session_id":"bad-1","user_external_id":"bob"}`,  // 1 invalid: three fields missing
		summaryJSON("stored-1", "alice", started, 60, 0.5), // 2 duplicate of a stored row
		summaryJSON("stored-1", "alice", started, 61, 0.5), // 3 conflict with a stored row
		summaryJSON("new-1", "bob", started, 120, 0.6),     // 4 repeats item 0: duplicate
		summaryJSON("new-1", "bob", started, 121, 0.6),     // 5 repeats item 0 with another value: conflict
		`"not an object"`, // 6 invalid
		summaryJSON("new-2", "a/b", started, 60, 0.5),   // 7 invalid user id
		summaryJSON("new-3", "carol", started, 60, 0.5), // 8 ok
	)))
	if got, want := a.statuses(), "ok invalid duplicate conflict duplicate conflict invalid invalid ok"; got != want {
		t.Errorf("statuses %q, want %q", got, want)
	}
	if a.OK != 2 || a.Duplicate != 2 || a.Conflict != 2 || a.Invalid != 3 || a.Gone != 0 {
		t.Errorf("counts %+v, want 2 ok, 2 duplicate, 2 conflict, 3 invalid", a)
	}
	for _, i := range []int{1, 6, 7} {
		r := a.Results[i]
		if r.Index == nil || *r.Index != i || r.SessionID != nil || !bytes.Contains(r.Detail, []byte(fmt.Sprintf(`"loc":["body","sessions",%d`, i))) {
			t.Errorf("result %d = index %v, session %v, detail %s; want its index and errors located at [body sessions %d ...]", i, r.Index, r.SessionID, r.Detail, i)
		}
	}
	if r := a.Results[3]; r.SessionID == nil || *r.SessionID != "stored-1" || !bytes.Contains(r.Detail, []byte("duration_seconds")) {
		t.Errorf("conflict result = %+v, want session stored-1 and a detail naming duration_seconds", r)
	}
	if n := ts.count(t, `select count(*) from sessions`); n != 3 {
		t.Errorf("%d sessions stored, want 3 (stored-1, new-1, new-3)", n)
	}
	if n := ts.count(t, `select duration_seconds from sessions where session_id = 'stored-1'`); n != 60 {
		t.Errorf("stored-1 has %d seconds after a conflicting item, want the stored 60 kept", n)
	}
	expectRollupsFresh(t, ts)
}

// The database fails in the middle of the batch: nothing of it is stored,
// and the answer is a 503 the device retries.
func TestBatchDatabaseFailureStoresNothing(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	if _, err := ts.pool.Exec(t.Context(), `
		create function fail_on_poison() returns trigger language plpgsql as $$
		begin
			if exists (select from new_rows where session_id = 'poison') then
				raise exception 'disk full' using errcode = 'disk_full';
			end if;
			return null;
		end $$;
		create trigger fail_on_poison after insert on sessions referencing new table as new_rows
			for each statement execute function fail_on_poison();`); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	rec := ts.postBatch(t, batchJSON(
		summaryJSON("fine-1", "alice", started, 60, 0.5),
		summaryJSON("poison", "bob", started, 60, 0.5),
		summaryJSON("fine-2", "carol", started, 60, 0.5)))
	expectStatus(t, rec, http.StatusServiceUnavailable)
	expectHeader(t, rec, "Retry-After", "1")
	if n := ts.count(t, `select (select count(*) from sessions) + (select count(*) from users)`); n != 0 {
		t.Errorf("%d sessions and users stored by a failed batch, want none", n)
	}
}

// Batches over the same users in different orders, at once: no deadlock,
// and every rollup equals a fresh recompute.
func TestConcurrentBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 16)
	// The batches wait for each other's user locks in turn; this test is
	// about deadlocks, not about how long that takes.
	ts.cfg.DBTimeout = time.Minute
	// A deadlock would be retried and pass unseen: the server counts them.
	deadlocks := func() int {
		return ts.count(t, `select deadlocks from pg_stat_database where datname = current_database()`)
	}
	before := deadlocks()
	started := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for b := range 20 {
		wg.Go(func() {
			var items []string
			for i := range 30 {
				user := fmt.Sprintf("u%d", (b*7+i*(1+b%3))%10) // each batch visits the users in its own order
				items = append(items, summaryJSON(fmt.Sprintf("b%d-%d", b, i), user, started.Add(time.Duration(i)*time.Minute), 60, 0.5))
			}
			// The same session, sent by a single ingest at the same time
			// (a device retrying over both routes): one stores it.
			shared := summaryJSON(fmt.Sprintf("shared-%d", b), fmt.Sprintf("u%d", 9-b%10), started, 30, 0.4)
			items = append(items, shared)
			var single *httptest.ResponseRecorder
			var both sync.WaitGroup
			both.Go(func() { single = ts.ingest(t, shared) })
			rec := ts.postBatch(t, batchJSON(items...))
			both.Wait()
			mu.Lock()
			defer mu.Unlock()
			if single.Code != http.StatusOK {
				bad = append(bad, fmt.Sprintf("single ingest %d: %d %s", b, single.Code, single.Body))
			}
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"conflict":0,"invalid":0`) {
				bad = append(bad, fmt.Sprintf("batch %d: %d %.200s", b, rec.Code, rec.Body))
			}
		})
	}
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	if n := ts.count(t, `select count(*) from sessions`); n != 20*31 {
		t.Errorf("%d sessions stored, want %d", n, 20*31)
	}
	expectRollupsFresh(t, ts)
	// The statistics reach the view within a moment of the transactions.
	time.Sleep(1100 * time.Millisecond)
	if n := deadlocks() - before; n != 0 {
		t.Errorf("%d deadlocks while batches and single ingests ran, want none", n)
	}
}

func gzipped(t *testing.T, body []byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestIngestAcceptsGzip(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	enc := []string{"Content-Encoding", "gzip"}

	a := decodeBatchAnswer(t, ts.postBatch(t, gzipped(t, []byte(batchJSON(summaryJSON("gz-1", "alice", started, 60, 0.5)))), enc...))
	if a.OK != 1 {
		t.Errorf("gzipped batch: %+v, want one ok", a)
	}
	rec := ts.request(t, http.MethodPost, "/internal/ingest/session_summary", gzipped(t, []byte(summaryJSON("gz-2", "alice", started, 60, 0.5))),
		"Authorization", "Bearer "+ingestToken, "Content-Encoding", "GZIP")
	expectStatus(t, rec, http.StatusOK)

	// A zip bomb: 10 MB of spaces in about 10 KB. Refused once the limit
	// is passed, not after inflating it all.
	bomb := gzipped(t, append([]byte(`{"sessions":[`), bytes.Repeat([]byte(" "), 10<<20)...))
	rec = ts.postBatch(t, bomb, enc...)
	expectStatus(t, rec, http.StatusRequestEntityTooLarge)
	expectBody(t, rec, `{"detail":"Request body is larger than 1 MiB"}`)
	rec = ts.request(t, http.MethodPost, "/internal/ingest/session_summary", bomb, "Authorization", "Bearer "+ingestToken, "Content-Encoding", "gzip")
	expectStatus(t, rec, http.StatusRequestEntityTooLarge)

	for name, body := range map[string]string{
		"not gzip":  "{not gzip at all}",
		"truncated": gzipped(t, []byte(batchJSON(summaryJSON("gz-3", "alice", started, 60, 0.5))))[:20],
	} {
		rec := ts.postBatch(t, body, enc...)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Errorf("%s: %d %s, want a 4xx", name, rec.Code, rec.Body)
		}
	}
	for _, encoding := range []string{"br", "deflate", "gzip, gzip"} {
		expectStatus(t, ts.postBatch(t, batchJSON(), "Content-Encoding", encoding), http.StatusUnsupportedMediaType)
	}
	if n := ts.count(t, `select count(*) from sessions`); n != 2 {
		t.Errorf("%d sessions stored, want the 2 valid gzipped ones", n)
	}
}

func TestBatchEnvelopeErrors(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	item := summaryJSON("env-1", "alice", started, 60, 0.5)
	many := make([]string, MaxBatchSessions+1)
	for i := range many {
		many[i] = summaryJSON(fmt.Sprintf("many-%d", i), "alice", started, 60, 0.5)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not an object", `[` + item + `]`, 422, `"type":"model_attributes_type"`},
		{"sessions missing", `{"session":[` + item + `]}`, 422, `"loc":["body","sessions"],"msg":"Field required"`},
		{"sessions not a list", `{"sessions":` + item + `}`, 422, `"type":"list_type"`},
		{"sessions null", `{"sessions":null}`, 422, `"msg":"Field required"`},
		{"empty", `{"sessions":[]}`, 422, `"type":"too_short"`},
		{"1001 items", batchJSON(many...), 422, `"type":"too_long"`},
		{"over 1 MiB", `{"pad":"` + strings.Repeat("x", maxBatchBytes) + `","sessions":[` + item + `]}`, 413, "larger than 1 MiB"},
		{"malformed JSON", `{"sessions":[` + item, 422, `"type":"json_invalid"`},
	} {
		rec := ts.postBatch(t, tc.body)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %.300s; want %d with %s", tc.name, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
	if n := ts.count(t, `select count(*) from sessions`); n != 0 {
		t.Errorf("%d sessions stored by refused batches, want none", n)
	}
}
