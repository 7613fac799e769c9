package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func (ts *testServer) erase(t *testing.T, userID string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodDelete, "/internal/users/"+userID, "", "Authorization", "Bearer "+ingestToken)
}

func (ts *testServer) export(t *testing.T, userID string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodGet, "/internal/users/"+userID+"/export", "", "Authorization", "Bearer "+ingestToken)
}

// rowsAbout counts the rows of every table that name the user with id, or
// with external id ext.
func (ts *testServer) rowsAbout(t *testing.T, id, ext string) int {
	t.Helper()
	return ts.count(t, `select (select count(*) from users where id = $1::uuid or external_id = $2)
		+ (select count(*) from sessions where user_id = $1::uuid)
		+ (select count(*) from dashboard_rollups where user_id = $1::uuid)
		+ (select count(*) from user_settings where user_id = $1::uuid)`, id, ext)
}

func TestEraseRemovesEverything(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Now().UTC().Truncate(time.Second)
	expectStatus(t, ts.putSettings(t, "alice", `{"time_zone":"Europe/Berlin"}`), http.StatusOK)
	var items []string
	for i := range 12 { // in the window, and weeks before it
		items = append(items, summaryJSON(fmt.Sprintf("e-%d", i), "alice", now.Add(-time.Duration(i*60)*time.Hour), 60, 0.5))
	}
	items = append(items, summaryJSON("bob-1", "bob", now.Add(-time.Hour), 60, 0.5))
	decodeBatchAnswer(t, ts.postBatch(t, batchJSON(items...)))
	var id string
	if err := ts.pool.QueryRow(t.Context(), `select id::text from users where external_id = 'alice'`).Scan(&id); err != nil {
		t.Fatal(err)
	}

	rec := ts.erase(t, "alice")
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"status":"erased","sessions":12}`)
	if n := ts.rowsAbout(t, id, "alice"); n != 0 {
		t.Errorf("%d rows still name alice after her erasure, want none", n)
	}
	var hashes int
	sum := sha256.Sum256([]byte("alice"))
	if err := ts.pool.QueryRow(t.Context(), `select count(*) from erasures where user_hash = decode($1, 'hex')`,
		hex.EncodeToString(sum[:])).Scan(&hashes); err != nil || hashes != 1 {
		t.Errorf("erasure records for alice's hash: %d (%v), want 1", hashes, err)
	}
	expectRollupsFresh(t, ts)
	if got := withoutLastUpdated(t, ts.dashboard(t, "alice", aliceToken)); !strings.Contains(got, `"dailyActivity":[false,false,false,false,false,false,false]`) {
		t.Errorf("dashboard after erasure %s, want the empty state", got)
	}
	expectStatus(t, ts.export(t, "alice"), http.StatusNotFound)
	if n := ts.rowsAbout(t, id, "alice"); n != 0 {
		t.Errorf("reading the erased user wrote %d rows", n)
	}
	if n := ts.count(t, `select count(*) from sessions`); n != 1 {
		t.Errorf("%d sessions left, want bob's one", n)
	}

	rec = ts.erase(t, "alice")
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"status":"erased","sessions":0}`)
	expectStatus(t, ts.erase(t, "nobody-ever"), http.StatusNotFound)
	expectBody(t, ts.erase(t, "nobody-ever"), `{"detail":"User not found"}`)
}

// An erasure sticks: the user's old sessions, replayed by an offline
// device, are refused; a session that starts after the erasure begins a new
// history.
func TestErasureSticks(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := summaryJSON("old-1", "alice", now.Add(-2*time.Hour), 60, 0.5)
	older := summaryJSON("old-2", "alice", now.Add(-3*time.Hour), 60, 0.5)
	expectStatus(t, ts.ingest(t, old), http.StatusOK)
	ts.pinClock(now)
	expectStatus(t, ts.erase(t, "alice"), http.StatusOK)

	rec := ts.ingest(t, old)
	expectStatus(t, rec, http.StatusGone)
	expectBody(t, rec, `{"detail":"user erased"}`)
	a := decodeBatchAnswer(t, ts.postBatch(t, batchJSON(old, older, summaryJSON("bob-1", "bob", now.Add(-time.Hour), 60, 0.5))))
	if a.statuses() != "gone gone ok" || a.Gone != 2 || a.OK != 1 {
		t.Errorf("batch replaying alice's old sessions: %q (%+v), want gone gone ok", a.statuses(), a)
	}
	rec = ts.putSettings(t, "alice", `{"time_zone":"Asia/Tokyo","effective_from":"`+now.Add(-time.Hour).Format(time.RFC3339)+`"}`)
	expectStatus(t, rec, http.StatusGone)
	if n := ts.count(t, `select count(*) from users where external_id = 'alice'`); n != 0 {
		t.Errorf("refused writes created alice again (%d rows)", n)
	}

	// A session that starts after the erasure: a new history.
	ts.pinClock(now.Add(2 * time.Hour))
	rec = ts.ingest(t, summaryJSON("new-1", "alice", now.Add(time.Hour), 120, 0.9))
	expectStatus(t, rec, http.StatusOK)
	if n := ts.count(t, `select count(*) from sessions s join users u on u.id = s.user_id where u.external_id = 'alice'`); n != 1 {
		t.Errorf("alice has %d sessions after her new one, want 1", n)
	}
	// Her old sessions are still refused now that she exists again.
	expectStatus(t, ts.ingest(t, older), http.StatusGone)
	expectRollupsFresh(t, ts)
}

// Ingests racing an erasure: each session is either erased with the user
// or refused; none that started before the erasure survives it.
func TestErasureRacingIngests(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 16)
	// Fifty writers queue for alice's lock: correctness, not latency.
	ts.cfg.DBTimeout = time.Minute
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	expectStatus(t, ts.ingest(t, summaryJSON("first", "alice", started, 60, 0.5)), http.StatusOK)
	var wg sync.WaitGroup
	statuses := make([]int, 50)
	for i := range 50 {
		wg.Go(func() {
			if i%2 == 0 {
				statuses[i] = ts.ingest(t, summaryJSON(fmt.Sprintf("race-%d", i), "alice", started.Add(time.Duration(i)*time.Second), 60, 0.5)).Code
				return
			}
			item := summaryJSON(fmt.Sprintf("race-%d", i), "alice", started.Add(time.Duration(i)*time.Second), 60, 0.5)
			statuses[i] = ts.postBatch(t, batchJSON(item)).Code
		})
		if i == 25 {
			wg.Go(func() { expectStatus(t, ts.erase(t, "alice"), http.StatusOK) })
		}
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK && s != http.StatusGone {
			t.Errorf("ingest %d racing the erasure: %d, want 200 (stored, or gone in a batch) or 410", i, s)
		}
	}
	if n := ts.count(t, `select count(*) from sessions s where s.started_at < (select max(erased_at) from erasures)`); n != 0 {
		t.Errorf("%d sessions that started before the erasure survived it", n)
	}
	if n := ts.count(t, `select count(*) from users u where not exists (select from sessions s where s.user_id = u.id)`); n != 0 {
		t.Errorf("%d users without sessions: created for items the erasure refused", n)
	}
	expectRollupsFresh(t, ts)
}

// Reads write nothing, for unknown and for erased users.
func TestReadsOfErasedUsersWriteNothing(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	var erased []string
	for i := range 20 {
		user := fmt.Sprintf("gone-%d", i)
		expectStatus(t, ts.ingest(t, summaryJSON("s-"+user, user, started, 60, 0.5)), http.StatusOK)
		expectStatus(t, ts.erase(t, user), http.StatusOK)
		erased = append(erased, user)
	}
	before := ts.count(t, `select (select count(*) from users) + (select count(*) from dashboard_rollups) + (select count(*) from erasures)`)
	for i := range 1000 {
		user := fmt.Sprintf("unknown-%d", i)
		if i%50 < len(erased) {
			user = erased[i%50]
		}
		expectStatus(t, ts.dashboard(t, user, adminToken), http.StatusOK)
	}
	if after := ts.count(t, `select (select count(*) from users) + (select count(*) from dashboard_rollups) + (select count(*) from erasures)`); after != before {
		t.Errorf("1000 reads of unknown and erased users changed the row count from %d to %d", before, after)
	}
}

func TestExportHoldsEverything(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ts.pinClock(now)
	expectStatus(t, ts.putSettings(t, "alice", `{"time_zone":"Europe/Berlin","effective_from":"2026-03-01T00:00:00Z"}`), http.StatusOK)
	expectStatus(t, ts.ingest(t, summaryJSON("x-2", "alice", now.Add(-time.Hour), 90, 0.66)), http.StatusOK)
	expectStatus(t, ts.ingest(t, summaryJSON("x-1", "alice", now.Add(-50*time.Hour), 60, 0.5)), http.StatusOK)

	rec := ts.export(t, "alice")
	expectStatus(t, rec, http.StatusOK)
	var doc struct {
		UserID    string `json:"user_id"`
		CreatedAt string `json:"created_at"`
		Settings  []struct {
			EffectiveFrom string `json:"effective_from"`
			TimeZone      string `json:"time_zone"`
		} `json:"settings"`
		Sessions []struct {
			SessionID      string  `json:"session_id"`
			StartedAt      string  `json:"started_at"`
			Duration       int     `json:"duration_seconds"`
			SentimentScore float64 `json:"sentiment_score"`
			ReceivedAt     string  `json:"received_at"`
		} `json:"sessions"`
		Dashboard json.RawMessage `json:"dashboard"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, rec.Body)
	}
	if !strings.HasPrefix(rec.Body.String(), `{"user_id":"alice","created_at":"`) {
		t.Errorf("export starts %.60s, want user_id then created_at", rec.Body)
	}
	if doc.UserID != "alice" || len(doc.Settings) != 1 || doc.Settings[0].TimeZone != "Europe/Berlin" {
		t.Errorf("export user %q settings %+v, want alice with one change to Europe/Berlin", doc.UserID, doc.Settings)
	}
	if len(doc.Sessions) != 2 || doc.Sessions[0].SessionID != "x-1" || doc.Sessions[1].SentimentScore != 0.66 ||
		doc.Sessions[0].StartedAt != "2026-03-08T10:00:00Z" || doc.Sessions[1].ReceivedAt == "" {
		t.Errorf("export sessions %+v, want x-1 (oldest) then x-2, with when they were received", doc.Sessions)
	}
	dashboard := ts.dashboard(t, "alice", aliceToken).Body.String()
	if string(doc.Dashboard) != dashboard {
		t.Errorf("export dashboard %s, want what the dashboard serves: %s", doc.Dashboard, dashboard)
	}
	expectStatus(t, ts.export(t, "nobody"), http.StatusNotFound)
	if !strings.Contains(ts.logs.String(), `"msg":"user exported","request_id":`) || !strings.Contains(ts.logs.String(), `"sessions":2`) {
		t.Errorf("no info line for the export with its count in the log:\n%s", ts.logs)
	}
}

// The request log names the credential used, by fingerprint, never the
// token itself.
func TestLogCarriesTheTokenFingerprint(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	expectStatus(t, ts.dashboard(t, "alice", aliceToken), http.StatusOK)
	sum := sha256.Sum256([]byte(aliceToken))
	want := hex.EncodeToString(sum[:])[:12]
	var found bool
	for _, line := range ts.logs.lines(t) {
		if line["msg"] == "request" && line["path"] == "/api/dashboard/alice" {
			found = line["token_id"] == want
		}
	}
	if !found {
		t.Errorf("the dashboard read's log line lacks token_id %s:\n%s", want, ts.logs)
	}
	if strings.Contains(ts.logs.String(), aliceToken) {
		t.Errorf("the log holds the token itself:\n%s", ts.logs)
	}
}
