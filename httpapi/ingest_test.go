package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIngestStoresOnceThenReportsDuplicate(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	payload := summaryJSON("sess-1", "alice", started, 720, 0.68)

	rec := ts.ingest(t, payload)
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"status":"ok"}`)
	expectHeader(t, rec, "Content-Type", "application/json")

	rec = ts.ingest(t, payload)
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"status":"duplicate"}`)

	var n int
	var gotStarted time.Time
	var duration int
	var score float64
	err := ts.pool.QueryRow(context.Background(),
		`select count(*) over (), started_at, duration_seconds, sentiment_score::float8
		   from sessions join users u on u.id = sessions.user_id
		  where session_id = 'sess-1' and u.external_id = 'alice'`).Scan(&n, &gotStarted, &duration, &score)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || !gotStarted.Equal(started) || duration != 720 || score != 0.68 {
		t.Fatalf("stored %d rows: %v, %d s, %v; want 1 row: %v, 720 s, 0.68", n, gotStarted, duration, score, started)
	}
}

// The device retries on any error, so one session may arrive many times at
// once, each on its own connection: exactly one request stores it, and the
// rollup counts it once.
func TestConcurrentResendsStoreOnce(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 16)
	live := ts.listen(t)
	// 90 s is 2 minutes; counted twice it would be 3.
	payload := summaryJSON("sess-race", "alice", time.Now().Add(-time.Minute), 90, 0.5)
	const senders = 50
	answers := make(chan string, senders)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			<-start // all at once, so the inserts really race
			resp, err := live.ingest(payload)
			switch {
			case err != nil:
				answers <- err.Error()
			case resp.status != http.StatusOK:
				answers <- resp.String()
			default:
				answers <- resp.body
			}
		})
	}
	close(start)
	wg.Wait()
	close(answers)
	counts := map[string]int{}
	for a := range answers {
		counts[a]++
	}
	if len(counts) != 2 || counts[`{"status":"ok"}`] != 1 || counts[`{"status":"duplicate"}`] != senders-1 {
		t.Fatalf("answers %v, want one 200 ok and %d 200 duplicates", counts, senders-1)
	}

	var rows int
	if err := ts.pool.QueryRow(t.Context(), `select count(*) from sessions`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d rows in sessions, want 1", rows)
	}
	expectRollupsFresh(t, ts)

	resp, err := live.dashboard("alice", aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := decodeDashboard(t, resp)
	var minutes, active int
	for d := range WindowDays {
		minutes += snapshot.AvgDuration.DailyDurations[d]
		if snapshot.Streak.DailyActivity[d] {
			active++
		}
	}
	if minutes != 2 || active != 1 || snapshot.AvgDuration.Minutes != 2 {
		t.Fatalf("dashboard shows %d minutes on %d active days, average %d; want the one 90 s session: 2 minutes on 1 day, average 2",
			minutes, active, snapshot.AvgDuration.Minutes)
	}
}

func TestConflictingResendIs409AndKeepsTheRow(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	expectStatus(t, ts.ingest(t, summaryJSON("sess-c", "alice", started, 720, 0.68)), http.StatusOK)

	rec := ts.ingest(t, summaryJSON("sess-c", "alice", started, 600, 0.2))
	expectStatus(t, rec, http.StatusConflict)
	expectBody(t, rec, `{"status":"conflict","detail":"session_id is already stored with different values: duration_seconds, sentiment_score"}`)

	rec = ts.ingest(t, summaryJSON("sess-c", "bob", started.Add(time.Second), 720, 0.68))
	expectStatus(t, rec, http.StatusConflict)
	expectBody(t, rec, `{"status":"conflict","detail":"session_id is already stored with different values: user_external_id, started_at"}`)

	var duration int
	var score float64
	var owner string
	var users int
	err := ts.pool.QueryRow(context.Background(),
		`select s.duration_seconds, s.sentiment_score::float8, u.external_id, (select count(*) from users)
		   from sessions s join users u on u.id = s.user_id where s.session_id = 'sess-c'`).Scan(&duration, &score, &owner, &users)
	if err != nil {
		t.Fatal(err)
	}
	if duration != 720 || score != 0.68 || owner != "alice" || users != 1 {
		t.Fatalf("after conflicts: %d s, %v, owner %s, %d users; want the first values and no user bob", duration, score, owner, users)
	}
}

func TestSameInstantInAnotherOffsetIsADuplicate(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	utc := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	kolkata := utc.In(time.FixedZone("", 5*3600+30*60))
	expectBody(t, ts.ingest(t, summaryJSON("sess-tz", "alice", utc, 300, 0.5)), `{"status":"ok"}`)
	expectBody(t, ts.ingest(t, summaryJSON("sess-tz", "alice", kolkata, 300, 0.5)), `{"status":"duplicate"}`)
}

func TestIngestContentTypes(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Now()
	for i, tc := range []struct {
		headers []string
		status  int
	}{
		{[]string{"Content-Type", "application/json"}, http.StatusOK},
		{[]string{"Content-Type", "application/json; charset=utf-8"}, http.StatusOK},
		{[]string{"Content-Type", "Application/JSON; Charset=UTF-8"}, http.StatusOK},
		// FastAPI read a body without Content-Type as JSON; so do we.
		{nil, http.StatusOK},
		{[]string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", ""}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/json", "Content-Type", "application/json"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "multipart/form-data; boundary=x"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/json; charset=utf-16"}, http.StatusUnsupportedMediaType},
		// Structured-syntax JSON types (RFC 6839) are JSON too.
		{[]string{"Content-Type", "application/merge-patch+json"}, http.StatusOK},
		{[]string{"Content-Type", "application/vnd.coco+json"}, http.StatusOK},
		{[]string{"Content-Type", "application/vnd.coco+json; charset=utf-8"}, http.StatusOK},
		{[]string{"Content-Type", "Application/Vnd.Coco+JSON ; CHARSET=\"UTF-8\""}, http.StatusOK},
		{[]string{"Content-Type", "application/vnd.coco.v1+json"}, http.StatusOK},
		{[]string{"Content-Type", "application/vnd.coco+json; charset=latin1"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/+json"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/json+xml"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/jsonx"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/x-json"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "text/json"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "text/vnd.coco+json"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/vnd.coco+json+xml"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/xml"}, http.StatusUnsupportedMediaType},
		{[]string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
	} {
		payload := summaryJSON("sess-ct-"+string(rune('a'+i)), "alice", now, 60, 0.5)
		headers := append([]string{"Authorization", "Bearer " + ingestToken}, tc.headers...)
		rec := ts.request(t, http.MethodPost, "/internal/ingest/session_summary", payload, headers...)
		if rec.Code != tc.status {
			t.Errorf("Content-Type %q: status %d, want %d", tc.headers, rec.Code, tc.status)
		}
		if tc.status == http.StatusUnsupportedMediaType {
			expectBody(t, rec, `{"detail":"Content-Type must be application/json"}`)
		}
	}
}

func TestIngestBodyLimitIs64KiB(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	payload := summaryJSON("sess-big", "alice", time.Now(), 60, 0.5)
	pad := func(total int) string { // payload padded with an unknown field to total bytes
		prefix := `{"pad":"`
		suffix := `",` + payload[1:]
		return prefix + strings.Repeat("x", total-len(prefix)-len(suffix)) + suffix
	}

	rec := ts.ingest(t, pad(maxBodyBytes+1))
	expectStatus(t, rec, http.StatusRequestEntityTooLarge)
	expectBody(t, rec, `{"detail":"Request body is larger than 64 KiB"}`)

	rec = ts.ingest(t, pad(maxBodyBytes))
	expectStatus(t, rec, http.StatusOK)
}

func TestStartedAtIsCheckedAgainstTheServerClock(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Now().Truncate(time.Second)
	ts.pinClock(now)
	expectStatus(t, ts.ingest(t, summaryJSON("sess-f1", "alice", now.Add(5*time.Minute), 60, 0.5)), http.StatusOK)
	rec := ts.ingest(t, summaryJSON("sess-f2", "alice", now.Add(5*time.Minute+time.Second), 60, 0.5))
	expectStatus(t, rec, http.StatusUnprocessableEntity)
	expectBody(t, rec, `{"detail":[{"loc":["body","started_at"],"msg":"Input should not be more than 5 minutes in the future","type":"value_error"}]}`)
}

func TestIngestLogNamesTheUser(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	expectStatus(t, ts.ingest(t, summaryJSON("sess-log", "carol", time.Now(), 60, 0.5)), http.StatusOK)
	// The user is named even when another field is wrong.
	expectStatus(t, ts.ingest(t, body(map[string]string{"user_external_id": `"dave"`, "duration_seconds": "-1"})), http.StatusUnprocessableEntity)
	var users []any
	for _, line := range ts.logs.lines(t) {
		if line["msg"] == "request" {
			users = append(users, line["user_id"])
		}
	}
	if len(users) != 2 || users[0] != "carol" || users[1] != "dave" {
		t.Fatalf("logged users %v, want [carol dave]", users)
	}
}

// Over a real connection, an oversized body ends the connection rather than
// being read to its end.
func TestOversizedBodyClosesTheConnection(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/internal/ingest/session_summary",
		strings.NewReader(strings.Repeat(" ", 4*maxBodyBytes)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Fatalf("status %d, Connection close %v; want 413 and a closed connection", resp.StatusCode, resp.Close)
	}
}

// Python's JSON parser, which the original service used, skips a UTF-8 byte
// order mark before the value; devices written against it may send one.
func TestIngestAcceptsALeadingByteOrderMark(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	rec := ts.ingest(t, "\uFEFF"+summaryJSON("bom-1", "alice", started, 60, 0.5))
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"status":"ok"}`)
	// Only at the start: a BOM anywhere else is a syntax error.
	rec = ts.ingest(t, " \uFEFF"+summaryJSON("bom-2", "alice", started, 60, 0.5))
	expectStatus(t, rec, http.StatusUnprocessableEntity)
}

// A body of nothing but repeated keys names each once; a body with more
// problems than that gets the first ones and a count, never an answer
// several times its own size.
func TestValidationAnswerIsCapped(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	var b strings.Builder
	b.WriteString("{")
	for i := 0; b.Len() < maxBodyBytes-100; i++ {
		fmt.Fprintf(&b, `"k%d":1,"k%d":2,`, i, i)
	}
	b.WriteString(`"end":0}`)
	rec := ts.ingest(t, b.String())
	expectStatus(t, rec, http.StatusUnprocessableEntity)
	var got struct {
		Detail []fieldError `json:"detail"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Detail) != maxReportedErrors || rec.Body.Len() > 4096 {
		t.Fatalf("422 with %d errors in %d bytes; want %d errors in a few KiB", len(got.Detail), rec.Body.Len(), maxReportedErrors)
	}
	last := got.Detail[maxReportedErrors-1]
	if last.Type != "too_many_errors" || !regexp.MustCompile(`^\d{4} more errors not listed`).MatchString(last.Msg) {
		t.Errorf("last entry = %+v, want a too_many_errors entry counting thousands left out", last)
	}
	if got.Detail[0].Type != "duplicate_key" {
		t.Errorf("first entry = %+v, want the first repeated key", got.Detail[0])
	}
}
