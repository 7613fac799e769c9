package httpapi

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// lookAlikes are origins a sloppy match (prefix, suffix, case, scheme,
// trailing slash, port) would confuse with testOrigin.
var lookAlikes = []string{
	"null",
	"https://evil.example",
	"https://dashboard.example.com.evil.example",
	"https://evildashboard.example.com",
	"https://evil-dashboard.example.com",
	"https://dashboard.example.com.",
	"https://dashboard.example.com:8443",
	"https://dashboard.example.com/app",
	"https://dashboard.example.com,https://evil.example",
	"https://user@dashboard.example.com",
	"https://evil.example/https://dashboard.example.com",
	"https://DASHBOARD.example.com",
	"http://dashboard.example.com",
	"https://dashboard.example.com/",
	"https://dashboard.example.com:443",
	"https://dashboard.example.co",
	"",
}

func preflightHeaders(origin string) []string {
	return []string{
		"Origin", origin,
		"Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "authorization,if-none-match",
	}
}

func TestPreflightFromTheDashboard(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	for _, path := range []string{"/api/dashboard/alice", "/readyz"} {
		rec := ts.request(t, http.MethodOptions, path, "", preflightHeaders(testOrigin)...)
		expectStatus(t, rec, http.StatusNoContent)
		expectHeader(t, rec, "Access-Control-Allow-Origin", testOrigin)
		expectHeader(t, rec, "Access-Control-Allow-Methods", "GET")
		expectHeader(t, rec, "Access-Control-Allow-Headers", "Authorization, Content-Type, If-None-Match, X-Request-ID")
		expectHeader(t, rec, "Access-Control-Max-Age", "600")
		expectHeader(t, rec, "Vary", "Origin")
		if rec.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight allows credentials; bearer tokens need none")
		}
		if rec.Body.Len() != 0 {
			t.Errorf("preflight has a body: %s", rec.Body)
		}
	}
}

func TestPreflightFromOtherOriginsIsRefused(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	for _, origin := range lookAlikes {
		rec := ts.request(t, http.MethodOptions, "/api/dashboard/alice", "", preflightHeaders(origin)...)
		if rec.Code != http.StatusForbidden {
			t.Errorf("preflight from %q: status %d, want 403", origin, rec.Code)
		}
		expectNoCORS(t, rec, origin)
		expectHeader(t, rec, "Vary", "Origin")
	}

	// Two Origin headers are not the dashboard, even if one of them is.
	rec := ts.request(t, http.MethodOptions, "/api/dashboard/alice", "",
		"Origin", testOrigin, "Origin", testOrigin, "Access-Control-Request-Method", "GET")
	expectStatus(t, rec, http.StatusForbidden)
	expectNoCORS(t, rec, "two origins")
}

func TestSimpleRequestsGetCORSOnlyFromTheDashboard(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	rec := ts.request(t, http.MethodGet, "/livez", "", "Origin", testOrigin)
	expectStatus(t, rec, http.StatusOK)
	expectHeader(t, rec, "Access-Control-Allow-Origin", testOrigin)
	expectHeader(t, rec, "Access-Control-Expose-Headers", "X-Request-ID, ETag, Coco-Window-End, Coco-Time-Zone")
	expectHeader(t, rec, "Vary", "Origin")

	// Errors are readable by the dashboard too, so it can show them.
	rec = ts.dashboard(t, "alice", "nope", "Origin", testOrigin)
	expectStatus(t, rec, http.StatusUnauthorized)
	expectHeader(t, rec, "Access-Control-Allow-Origin", testOrigin)

	for _, origin := range lookAlikes {
		rec := ts.request(t, http.MethodGet, "/livez", "", "Origin", origin)
		expectStatus(t, rec, http.StatusOK)
		expectNoCORS(t, rec, origin)
		expectHeader(t, rec, "Vary", "Origin")
	}
	rec = ts.request(t, http.MethodGet, "/livez", "")
	expectNoCORS(t, rec, "no origin")
	expectHeader(t, rec, "Vary", "Origin")
}

func TestNoCORSOnInternalRoutes(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	rec := ts.request(t, http.MethodOptions, "/internal/ingest/session_summary", "", preflightHeaders(testOrigin)...)
	expectNoCORS(t, rec, testOrigin)
	if v := rec.Header().Get("Vary"); v != "" {
		t.Errorf("Vary = %q on /internal, want none", v)
	}
	rec = ts.request(t, http.MethodPost, "/internal/ingest/session_summary", "{}",
		"Origin", testOrigin, "Authorization", "Bearer "+ingestToken)
	expectStatus(t, rec, http.StatusUnprocessableEntity)
	expectNoCORS(t, rec, testOrigin)
}

func TestNullOriginIsNeverAllowed(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.cfg.DashboardOrigin = "null"
	rec := ts.request(t, http.MethodGet, "/livez", "", "Origin", "null")
	expectNoCORS(t, rec, "null")
}

func expectNoCORS(t *testing.T, rec interface{ Header() http.Header }, origin string) {
	t.Helper()
	for name := range rec.Header() {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), "Access-Control-") {
			t.Errorf("origin %q: got %s = %q, want no CORS headers", origin, name, rec.Header().Get(name))
		}
	}
}

// A refused origin is in the request's log line, so whoever develops a
// dashboard sees which origin to configure; an allowed one is not logged.
func TestRefusedOriginIsLogged(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.request(t, http.MethodOptions, "/api/dashboard/alice", "", preflightHeaders("http://localhost:5173")...)
	ts.request(t, http.MethodGet, "/livez", "", "Origin", "https://evil.example")
	ts.request(t, http.MethodGet, "/livez", "", "Origin", testOrigin)
	var refused []any
	for _, line := range ts.logs.lines(t) {
		if line["msg"] == "request" {
			refused = append(refused, line["refused_origin"])
		}
	}
	want := []any{"http://localhost:5173", "https://evil.example", nil}
	if !reflect.DeepEqual(refused, want) {
		t.Errorf("refused_origin in the request lines = %v, want %v", refused, want)
	}
}
