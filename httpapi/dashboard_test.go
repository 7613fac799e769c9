package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coco/sql/store"
)

var lastUpdatedField = regexp.MustCompile(`"lastUpdated":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z)"}$`)

// withoutLastUpdated returns body with its lastUpdated value (the database's
// clock) replaced by "T", after checking its format.
func withoutLastUpdated(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	body := rec.Body.String()
	m := lastUpdatedField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("body %s does not end with a UTC lastUpdated", body)
	}
	return strings.Replace(body, m[1], "T", 1)
}

func TestDashboardEmptyStateForANewUser(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	rec := ts.dashboard(t, "newcomer", adminToken)
	expectStatus(t, rec, http.StatusOK)
	want := `{"lastSession":{"timestamp":null},` +
		`"streak":{"days":0,"dailyActivity":[false,false,false,false,false,false,false]},` +
		`"avgDuration":{"minutes":0,"dailyDurations":[0,0,0,0,0,0,0]},` +
		`"toneTrend":{"current":"neutral","dailySentiment":[null,null,null,null,null,null,null]},` +
		`"lastUpdated":"T"}`
	if got := withoutLastUpdated(t, rec); got != want {
		t.Fatalf("body = %s\nwant   %s", got, want)
	}
	expectHeader(t, rec, "Content-Type", "application/json")
	expectHeader(t, rec, "Cache-Control", "private, no-cache")
	if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(rec.Header().Get("ETag")) {
		t.Errorf("ETag = %q, want a quoted strong tag", rec.Header().Get("ETag"))
	}

	var users int
	if err := ts.pool.QueryRow(t.Context(), `select count(*) from users where external_id = 'newcomer'`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users != 0 {
		t.Fatalf("reading an unknown user created %d users, want none: reads never write", users)
	}
}

// The numbers come from the SQL engine; this checks that the HTTP layer
// carries every one of them to the right key, in the contract's format.
func TestDashboardSnapshotAfterIngest(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	day := func(back int, clock time.Duration) time.Time { return today.AddDate(0, 0, -back).Add(clock) }
	const h, m, s = time.Hour, time.Minute, time.Second
	for i, session := range []struct {
		at       time.Time
		duration int
		score    float64
	}{
		{day(0, 0), 90, 0.7},                          // today: 150 s -> 3 min, mean 0.675 -> 0.68
		{day(0, 30*s+250*time.Millisecond), 60, 0.65}, // the latest start: lastSession is its end
		{day(1, 1*h), 20, 0.3},                        // yesterday: active, 0 minutes
		{day(3, 12*h), 89, 0.5},                       // 89 s -> 1 min
		{day(8, 12*h), 3600, 0.1},                     // outside the window
		{day(6, 23*h+59*m+59*s), 600, 0.2},            // the window's first day
		{day(7, 23*h+59*m+59*s), 600, 0.2},            // the day before the window
	} {
		rec := ts.ingest(t, summaryJSON("snap-"+string(rune('a'+i)), "alice", session.at, session.duration, session.score))
		expectStatus(t, rec, http.StatusOK)
	}
	// Pin the read to noon today, so the test cannot straddle midnight.
	ts.pinClock(today.Add(12 * time.Hour))

	rec := ts.dashboard(t, "alice", aliceToken)
	expectStatus(t, rec, http.StatusOK)
	want := `{"lastSession":{"timestamp":"` + today.Format("2006-01-02") + `T00:01:30.250000Z"},` +
		`"streak":{"days":2,"dailyActivity":[true,false,false,true,false,true,true]},` +
		`"avgDuration":{"minutes":5,"dailyDurations":[10,0,0,1,0,0,3]},` +
		`"toneTrend":{"current":"positive","dailySentiment":[0.2,null,null,0.5,null,0.3,0.68]},` +
		`"lastUpdated":"T"}`
	if got := withoutLastUpdated(t, rec); got != want {
		t.Fatalf("body = %s\nwant   %s", got, want)
	}
	etagToday := rec.Header().Get("ETag")

	// Tomorrow the window moves on by a day: nothing happened yet today.
	ts.pinClock(today.Add(36 * time.Hour))
	rec = ts.dashboard(t, "alice", aliceToken)
	expectStatus(t, rec, http.StatusOK)
	want = `{"lastSession":{"timestamp":"` + today.Format("2006-01-02") + `T00:01:30.250000Z"},` +
		`"streak":{"days":0,"dailyActivity":[false,false,true,false,true,true,false]},` +
		`"avgDuration":{"minutes":2,"dailyDurations":[0,0,1,0,0,3,0]},` +
		`"toneTrend":{"current":"positive","dailySentiment":[null,null,0.5,null,0.3,0.68,null]},` +
		`"lastUpdated":"T"}`
	if got := withoutLastUpdated(t, rec); got != want {
		t.Fatalf("tomorrow body = %s\nwant   %s", got, want)
	}
	if rec.Header().Get("ETag") == etagToday {
		t.Fatalf("ETag %s did not change with the window", etagToday)
	}
	// Today's tag no longer matches.
	expectStatus(t, ts.dashboard(t, "alice", aliceToken, "If-None-Match", etagToday), http.StatusOK)
}

func TestDashboardETagAndNotModified(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	rec := ts.dashboard(t, "alice", aliceToken)
	expectStatus(t, rec, http.StatusOK)
	etag := rec.Header().Get("ETag")

	// An unchanged snapshot keeps its tag, across reads.
	if again := ts.dashboard(t, "alice", aliceToken).Header().Get("ETag"); again != etag {
		t.Fatalf("ETag changed from %s to %s without a change", etag, again)
	}

	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, `"a","b",` + etag + `,"c"`, "*", " " + etag + " "} {
		rec := ts.dashboard(t, "alice", aliceToken, "If-None-Match", inm)
		if rec.Code != http.StatusNotModified {
			t.Errorf("If-None-Match %s: status %d, want 304", inm, rec.Code)
			continue
		}
		if rec.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: 304 has a body %s", inm, rec.Body)
		}
		expectHeader(t, rec, "ETag", etag)
		expectHeader(t, rec, "Cache-Control", "private, no-cache")
		if rec.Header().Get("X-Request-ID") == "" {
			t.Errorf("304 without X-Request-ID")
		}
	}
	for _, inm := range []string{`"other"`, strings.Trim(etag, `"`), etag[:len(etag)-2] + `"`, `W/"x"`} {
		if rec := ts.dashboard(t, "alice", aliceToken, "If-None-Match", inm); rec.Code != http.StatusOK {
			t.Errorf("If-None-Match %s: status %d, want 200", inm, rec.Code)
		}
	}
	// The same header on two lines counts as one list.
	rec = ts.dashboard(t, "alice", aliceToken, "If-None-Match", `"x"`, "If-None-Match", etag)
	expectStatus(t, rec, http.StatusNotModified)

	// A new session changes the snapshot, hence the tag.
	expectStatus(t, ts.ingest(t, summaryJSON("etag-1", "alice", time.Now(), 120, 0.9)), http.StatusOK)
	rec = ts.dashboard(t, "alice", aliceToken, "If-None-Match", etag)
	expectStatus(t, rec, http.StatusOK)
	if rec.Header().Get("ETag") == etag {
		t.Fatalf("ETag %s unchanged after an ingest", etag)
	}
	// A 304 is not given for a tag another user's snapshot had.
	bob := ts.dashboard(t, "bob", bobToken).Header().Get("ETag")
	if rec := ts.dashboard(t, "alice", aliceToken, "If-None-Match", bob); rec.Code != http.StatusOK {
		t.Errorf("alice with bob's ETag: status %d, want 200", rec.Code)
	}
}

func TestDashboardUserIDIsValidated(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t) // refused before the database is asked
	for _, path := range []string{
		"a%20b", "a%09b", "a%00b", "%E2%80%8B", "%FF", "a%2Fb", strings.Repeat("u", 129),
	} {
		rec := ts.dashboard(t, path, adminToken)
		if path == "a%2Fb" {
			// An encoded slash is a path separator to the router.
			expectStatus(t, rec, http.StatusNotFound)
			continue
		}
		expectStatus(t, rec, http.StatusUnprocessableEntity)
		if !strings.HasPrefix(rec.Body.String(), `{"detail":[{"loc":["path","user_id"],"msg":"`) {
			t.Errorf("user id %q: body %s, want a path user_id error", path, rec.Body)
		}
	}
}

func TestDashboardDeadDatabaseIs503(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	rec := ts.dashboard(t, "alice", aliceToken)
	expectStatus(t, rec, http.StatusServiceUnavailable)
	expectBody(t, rec, `{"detail":"database unavailable"}`)
	expectHeader(t, rec, "Retry-After", "1")
	if rec.Header().Get("ETag") != "" {
		t.Errorf("a 503 carries an ETag")
	}
}

func TestDashboardJSONRefusesAMisshapenSnapshot(t *testing.T) {
	t.Parallel()
	_, err := dashboardJSON(store.Snapshot{DailyActivity: make([]bool, 6), DailyDurations: make([]int, 7), DailySentiment: make([]*float64, 7)})
	if err == nil {
		t.Fatal("a six-day snapshot was shaped into a response")
	}
}

func TestFormatTimestamp(t *testing.T) {
	t.Parallel()
	ist := time.FixedZone("IST", 5*3600+30*60)
	for in, want := range map[time.Time]string{
		time.Date(2025, 10, 22, 20, 0, 0, 0, ist):               "2025-10-22T14:30:00Z",
		time.Date(2025, 10, 22, 14, 30, 0, 250000000, time.UTC): "2025-10-22T14:30:00.250000Z",
		time.Date(2025, 10, 22, 14, 30, 0, 123456789, time.UTC): "2025-10-22T14:30:00.123456Z",
		time.Date(2025, 10, 22, 14, 30, 0, 999, time.UTC):       "2025-10-22T14:30:00Z",
	} {
		if got := formatTimestamp(in); got != want {
			t.Errorf("formatTimestamp(%v) = %s, want %s", in, got, want)
		}
	}
}

// Reads never write: a stranger with the "*" token reading random ids gets
// the empty state every time and cannot grow the database (the original
// design stored a user and a rollup per id read).
func TestReadsOfUnknownUsersWriteNothing(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 8)
	// Under -race and the other tests' load a read may pass the usual
	// deadline; this test is about writes, not latency.
	ts.cfg.DBTimeout = time.Minute
	counts := func() (users, rollups int) {
		t.Helper()
		if err := ts.pool.QueryRow(t.Context(),
			`select (select count(*) from users), (select count(*) from dashboard_rollups)`).Scan(&users, &rollups); err != nil {
			t.Fatal(err)
		}
		return users, rollups
	}
	expectStatus(t, ts.ingest(t, summaryJSON("known-1", "known", time.Now().Add(-time.Hour), 60, 0.5)), http.StatusOK)
	users, rollups := counts()

	const reads, workers = 10000, 8
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < reads; i += workers {
				rec := ts.dashboard(t, fmt.Sprintf("stranger-%d", i), adminToken)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"streak":{"days":0,`) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d reads of unknown users were not a 200 with the empty state", n, reads)
	}
	if u, r := counts(); u != users || r != rollups {
		t.Errorf("after %d reads of unknown users: %d users and %d rollups, want still %d and %d", reads, u, r, users, rollups)
	}
}
