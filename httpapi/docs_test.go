package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// specOperations lists "METHOD /path" for every operation in openapi.json.
func specOperations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// The document and routes() must describe the same API.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	s := setupDeadDB(t).Server
	want := []string{
		"DELETE /internal/users/{user_id}",
		"GET /api/dashboard/{user_id}",
		"GET /docs",
		"GET /healthz",
		"GET /internal/users/{user_id}/export",
		"GET /internal/users/{user_id}/settings",
		"GET /livez",
		"GET /openapi.json",
		"GET /readyz",
		"POST /internal/ingest/session_summaries",
		"POST /internal/ingest/session_summary",
		"PUT /internal/users/{user_id}/settings",
	}
	if got := specOperations(t); !slices.Equal(got, want) {
		t.Fatalf("openapi.json operations %q, want %q", got, want)
	}
	for _, op := range want {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{user_id}", "alice")
		if h, _, _ := s.router.Lookup(method, path); h == nil {
			t.Errorf("openapi.json has %s, routes() does not", op)
		}
	}
	// Every method the router knows, on every documented path, is
	// documented; HEAD goes with GET.
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		for _, op := range want {
			_, path, _ := strings.Cut(op, " ")
			concrete := strings.ReplaceAll(path, "{user_id}", "alice")
			documented := slices.Contains(want, method+" "+path) || method == "HEAD" && slices.Contains(want, "GET "+path)
			if h, _, _ := s.router.Lookup(method, concrete); h != nil && !documented {
				t.Errorf("routes() has %s %s, openapi.json does not", method, path)
			}
		}
	}
}

func TestDocsAreServedWhenEnabled(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)

	rec := ts.request(t, http.MethodGet, "/openapi.json", "")
	expectStatus(t, rec, http.StatusOK)
	expectHeader(t, rec, "Content-Type", "application/json")
	if rec.Body.String() != string(openAPIDoc) {
		t.Errorf("/openapi.json is not the embedded document")
	}

	rec = ts.request(t, http.MethodGet, "/docs", "")
	expectStatus(t, rec, http.StatusOK)
	expectHeader(t, rec, "Content-Type", "text/html; charset=utf-8")
	page := rec.Body.String()
	for _, want := range []string{
		"<code>/internal/ingest/session_summary</code>", "<code>/api/dashboard/{user_id}</code>",
		"<code>/healthz</code>", "<code>/readyz</code>", "<code>/livez</code>",
		"<code>422</code>", "<code>304</code>", "user_external_id", "WWW-Authenticate",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/docs lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://cdn"} {
		if strings.Contains(page, banned) {
			t.Errorf("/docs contains %q; it must be self-contained", banned)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("/docs CSP = %q, want default-src 'none' and no script source", csp)
	}
}

func TestDocsAreHiddenWhenDisabled(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Docs = false
	ts := newTestServer(t, setupDeadDB(t).pool, cfg)
	for _, path := range []string{"/docs", "/openapi.json"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			rec := ts.request(t, method, path, "")
			expectStatus(t, rec, http.StatusNotFound)
			expectBody(t, rec, `{"detail":"Not Found"}`)
		}
	}
}

// The dashboard example must be a snapshot the rollup rules could produce,
// and its last session the end of the ingest example's session.
// The documented dashboard example must be what coco computes: its week is
// stored as sessions and read back, so the numbers come from the SQL engine
// rather than from rules written again here.
func TestOpenAPIDashboardExampleIsWhatCocoComputes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Example json.RawMessage `json:"example"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var example dashboardBody
	raw := doc.Paths["/api/dashboard/{user_id}"]["get"].Responses["200"].Content["application/json"].Example
	if err := json.Unmarshal(raw, &example); err != nil {
		t.Fatalf("dashboard example: %v", err)
	}
	if len(example.Streak.DailyActivity) != WindowDays || len(example.AvgDuration.DailyDurations) != WindowDays ||
		len(example.ToneTrend.DailySentiment) != WindowDays {
		t.Fatalf("dashboard example arrays are not %d days long", WindowDays)
	}

	ts := setup(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i, active := range example.Streak.DailyActivity {
		if !active {
			continue
		}
		// One session a day, at midnight so that today's is never ahead of
		// the clock, whose minutes and score are the day's.
		seconds := 60 * example.AvgDuration.DailyDurations[i]
		if seconds == 0 {
			seconds = 20 // active, 0 minutes
		}
		if example.ToneTrend.DailySentiment[i] == nil {
			t.Fatalf("day %d is active without a sentiment", i)
		}
		at := today.AddDate(0, 0, i-(WindowDays-1))
		body := summaryJSON(fmt.Sprintf("example-%d", i), "alice", at, seconds, *example.ToneTrend.DailySentiment[i])
		expectStatus(t, ts.ingest(t, body), http.StatusOK)
	}
	ts.pinClock(today.Add(12 * time.Hour))
	rec := ts.dashboard(t, "alice", aliceToken)
	expectStatus(t, rec, http.StatusOK)
	var got dashboardBody
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// The timestamps depend on when the test runs; every number must match.
	gotJSON, _ := json.Marshal([]any{got.Streak, got.AvgDuration, got.ToneTrend})
	wantJSON, _ := json.Marshal([]any{example.Streak, example.AvgDuration, example.ToneTrend})
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("coco computes %s for the example's week; the example says %s", gotJSON, wantJSON)
	}
}
