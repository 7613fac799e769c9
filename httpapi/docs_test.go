package httpapi

import (
	"encoding/json"
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
		"GET /api/dashboard/{user_id}",
		"GET /docs",
		"GET /healthz",
		"GET /livez",
		"GET /openapi.json",
		"GET /readyz",
		"POST /internal/ingest/session_summary",
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
	// Every method the router knows, on every documented path, is documented.
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		for _, op := range want {
			_, path, _ := strings.Cut(op, " ")
			concrete := strings.ReplaceAll(path, "{user_id}", "alice")
			if h, _, _ := s.router.Lookup(method, concrete); h != nil && !slices.Contains(want, method+" "+path) {
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
func TestOpenAPIDashboardExampleFollowsTheRollupRules(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Example json.RawMessage `json:"example"`
				} `json:"content"`
			} `json:"requestBody"`
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
	var ingest struct {
		StartedAt       time.Time `json:"started_at"`
		DurationSeconds int       `json:"duration_seconds"`
		SentimentScore  float64   `json:"sentiment_score"`
	}
	raw := doc.Paths["/internal/ingest/session_summary"]["post"].RequestBody.Content["application/json"].Example
	if err := json.Unmarshal(raw, &ingest); err != nil {
		t.Fatalf("ingest example: %v", err)
	}
	var d struct {
		LastSession struct {
			Timestamp time.Time `json:"timestamp"`
		} `json:"lastSession"`
		Streak struct {
			Days          int    `json:"days"`
			DailyActivity []bool `json:"dailyActivity"`
		} `json:"streak"`
		AvgDuration struct {
			Minutes        int   `json:"minutes"`
			DailyDurations []int `json:"dailyDurations"`
		} `json:"avgDuration"`
		ToneTrend struct {
			Current        string     `json:"current"`
			DailySentiment []*float64 `json:"dailySentiment"`
		} `json:"toneTrend"`
		LastUpdated time.Time `json:"lastUpdated"`
	}
	raw = doc.Paths["/api/dashboard/{user_id}"]["get"].Responses["200"].Content["application/json"].Example
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard example: %v", err)
	}
	if len(d.Streak.DailyActivity) != WindowDays || len(d.AvgDuration.DailyDurations) != WindowDays || len(d.ToneTrend.DailySentiment) != WindowDays {
		t.Fatalf("dashboard example arrays are not %d days long", WindowDays)
	}

	// The streak counts active days back from today, the last element.
	streak := 0
	for i := WindowDays - 1; i >= 0 && d.Streak.DailyActivity[i]; i-- {
		streak++
	}
	if d.Streak.Days != streak {
		t.Errorf("streak.days = %d, want %d for %v", d.Streak.Days, streak, d.Streak.DailyActivity)
	}
	// The average is the mean of the non-zero days, rounded half up.
	sum, n := 0, 0
	for i, m := range d.AvgDuration.DailyDurations {
		if m > 0 {
			sum, n = sum+m, n+1
		}
		if active := d.Streak.DailyActivity[i]; active != (d.ToneTrend.DailySentiment[i] != nil) || !active && m != 0 {
			t.Errorf("day %d: activity %v, minutes %d, sentiment %v disagree", i, active, m, d.ToneTrend.DailySentiment[i])
		}
	}
	avg := 0
	if n > 0 {
		avg = (2*sum + n) / (2 * n)
	}
	if d.AvgDuration.Minutes != avg {
		t.Errorf("avgDuration.minutes = %d, want %d for %v", d.AvgDuration.Minutes, avg, d.AvgDuration.DailyDurations)
	}
	// The tone comes from the newest day with a sentiment.
	tone := "neutral"
	for i := WindowDays - 1; i >= 0; i-- {
		if s := d.ToneTrend.DailySentiment[i]; s != nil {
			switch {
			case *s >= 0.61:
				tone = "positive"
			case *s < 0.40:
				tone = "negative"
			}
			break
		}
	}
	if d.ToneTrend.Current != tone {
		t.Errorf("toneTrend.current = %q, want %q from the newest daily sentiment", d.ToneTrend.Current, tone)
	}
	// Today holds the ingest example's session: it ended at lastSession.
	end := ingest.StartedAt.Add(time.Duration(ingest.DurationSeconds) * time.Second)
	if !d.LastSession.Timestamp.Equal(end) {
		t.Errorf("lastSession.timestamp = %s, want %s, the end of the ingest example's session", d.LastSession.Timestamp, end)
	}
	if today := d.ToneTrend.DailySentiment[WindowDays-1]; today == nil || *today != ingest.SentimentScore {
		t.Errorf("today's sentiment = %v, want the ingest example's %v", today, ingest.SentimentScore)
	}
	if got, want := d.AvgDuration.DailyDurations[WindowDays-1], (ingest.DurationSeconds+30)/60; got != want {
		t.Errorf("today's minutes = %d, want %d from the ingest example", got, want)
	}
	if d.LastUpdated.Before(d.LastSession.Timestamp) {
		t.Errorf("lastUpdated %s is before lastSession %s", d.LastUpdated, d.LastSession.Timestamp)
	}
}
