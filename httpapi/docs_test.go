package httpapi

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
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

	// The page and everything it loads come from the binary, under a CSP
	// that lets the page run only those files and call only this origin.
	// It is written out here so that loosening it is a visible change.
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	for _, tc := range []struct{ path, contentType, has string }{
		{"/docs", "text/html; charset=utf-8", `<script src="/docs/docs.js">`},
		{"/docs/docs.js", "text/javascript; charset=utf-8", `url: "/openapi.json"`},
		{"/docs/swaggerui/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "SwaggerUIBundle"},
		{"/docs/swaggerui/swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"},
		{"/docs/swaggerui/LICENSE", "text/plain; charset=utf-8", "Apache License"},
		{"/docs/swaggerui/NOTICE", "text/plain; charset=utf-8", "SmartBear"},
		{"/docs/swaggerui/swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8", "DOMPurify"},
	} {
		rec := ts.request(t, http.MethodGet, tc.path, "")
		h := rec.Header()
		if rec.Code != http.StatusOK || h.Get("Content-Type") != tc.contentType || h.Get("Content-Security-Policy") != csp {
			t.Errorf("GET %s = %d, Content-Type %q, CSP %q; want 200, %q, %q",
				tc.path, rec.Code, h.Get("Content-Type"), h.Get("Content-Security-Policy"), tc.contentType, csp)
		}
		if !strings.Contains(rec.Body.String(), tc.has) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.has)
		}
		// A browser coming back revalidates and gets no body.
		etag := h.Get("ETag")
		again := ts.request(t, http.MethodGet, tc.path, "", "If-None-Match", etag)
		if h.Get("Cache-Control") != "no-cache" || etag == "" || again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("GET %s: Cache-Control %q, ETag %q, then with If-None-Match %d and %d bytes; want no-cache, a tag, 304 and none",
				tc.path, h.Get("Cache-Control"), etag, again.Code, again.Body.Len())
		}
	}

	page := ts.request(t, http.MethodGet, "/docs", "").Body.String()
	if n := strings.Count(page, "<script"); n != 2 || strings.Count(page, `<script src="/docs/`) != n {
		t.Errorf("/docs has %d scripts, want 2, each a file under /docs/:\n%s", n, page)
	}
	for _, banned := range []string{"<style", "style=", "http:", "https:", "//"} {
		if strings.Contains(page, banned) {
			t.Errorf("/docs contains %q; it must load nothing inline or from elsewhere", banned)
		}
	}

	// Only the embedded files: no directory listing, no second URL for the
	// page, none of the vendored folder's other files.
	for _, path := range []string{
		"/docs/", "/docs/swaggerui", "/docs/swaggerui/", "/docs/swaggerui/VERSION", "/docs/swaggerui/README.md",
		"/docs/swaggerui/update-swagger-ui.sh", "/docs/swaggerui/swagger-ui.css.map", "/docs/swaggerui/..",
		"/docs/docs.html", "/docs/index.html", "/docs/openapi.json", "/docs/swaggerui/docs.js",
	} {
		rec := ts.request(t, http.MethodGet, path, "")
		if rec.Code != http.StatusNotFound || rec.Body.String() != `{"detail":"Not Found"}` {
			t.Errorf("GET %s = %d %s, want 404 {\"detail\":\"Not Found\"}", path, rec.Code, rec.Body)
		}
	}
}

// The vendored Swagger UI is the release swaggerui/VERSION names, unmodified:
// VERSION has the sum of every embedded file, and each sum matches.
func TestSwaggerUIMatchesItsVERSION(t *testing.T) {
	t.Parallel()
	version, err := os.ReadFile("swaggerui/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(version), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != sha256.Size*2 {
			continue
		}
		listed[name] = true
		b, err := docsFiles.ReadFile("swaggerui/" + name)
		if err != nil {
			t.Errorf("VERSION lists %s, which is not embedded: %v", name, err)
			continue
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != sum {
			t.Errorf("swaggerui/%s has SHA-256 %s, VERSION says %s: run update-swagger-ui.sh rather than edit it", name, got, sum)
		}
	}
	embedded, err := fs.ReadDir(docsFiles, "swaggerui")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range embedded {
		if !listed[e.Name()] {
			t.Errorf("swaggerui/%s is embedded but VERSION has no sum for it", e.Name())
		}
	}
	if len(listed) == 0 {
		t.Errorf("no sums in swaggerui/VERSION:\n%s", version)
	}
}

func TestDocsAreHiddenWhenDisabled(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Docs = false
	ts := newTestServer(t, setupDeadDB(t).pool, cfg)
	for _, path := range []string{"/docs", "/openapi.json", "/docs/docs.js", "/docs/swaggerui/swagger-ui-bundle.js", "/docs/swaggerui/LICENSE"} {
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
