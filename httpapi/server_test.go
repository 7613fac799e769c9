package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/sqltest"
	"coco/sql/store"
)

// Test conventions: t.Parallel() first; setup(t) gives a Server on a fresh
// migrated database of its own; requests go through Handler() with httptest,
// so every test exercises the whole middleware chain.

const (
	ingestToken = "ingest-tok-3f9c1e"
	aliceToken  = "dash-tok-alice-71c2"
	bobToken    = "dash-tok-bob-0b44"
	adminToken  = "dash-tok-admin-55d0"
	testOrigin  = "https://dashboard.example.com"
)

func testConfig() Config {
	return Config{
		IngestToken:     ingestToken,
		DashboardTokens: map[string]string{aliceToken: "alice", bobToken: "bob", adminToken: "*"},
		DashboardOrigin: testOrigin,
		Docs:            true,
		DBTimeout:       2 * time.Second,
	}
}

// lockedBuffer collects log output from concurrent requests.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log records written so far, each decoded from JSON.
func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

type testServer struct {
	*Server
	pool *pgxpool.Pool
	logs *lockedBuffer
}

func newTestServer(t *testing.T, pool *pgxpool.Pool, cfg Config) *testServer {
	t.Helper()
	return newTestServerOn(t, store.NewStore(pool), pool, &lockedBuffer{}, cfg)
}

// newTestServerOn is newTestServer on st, logging into logs; pool is the
// primary's, for the tests' own queries.
func newTestServerOn(t *testing.T, st *store.Store, pool *pgxpool.Pool, logs *lockedBuffer, cfg Config) *testServer {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{Server: New(st, logger, cfg), pool: pool, logs: logs}
}

// setup returns a server on a fresh migrated database.
func setup(t *testing.T) *testServer {
	t.Helper()
	return newTestServer(t, sqltest.Pool(t), testConfig())
}

// setupWide is setup with room for conns database connections at once, so
// concurrent requests overlap in the database rather than queueing for the
// default pool's max(4, CPUs) connections.
func setupWide(t *testing.T, conns int32) *testServer {
	t.Helper()
	cfg := sqltest.Pool(t).Config()
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open a pool of %d connections: %v", conns, err)
	}
	t.Cleanup(pool.Close)
	return newTestServer(t, pool, testConfig())
}

// setupDeadDB returns a server whose database refuses connections.
func setupDeadDB(t *testing.T) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	return newTestServer(t, deadPool(t, addr), testConfig())
}

// setupSilentDB returns a server whose database accepts connections and
// never answers, the worst case for a deadline.
func setupSilentDB(t *testing.T, timeout time.Duration) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	cfg := testConfig()
	cfg.DBTimeout = timeout
	return newTestServer(t, deadPool(t, ln.Addr().String()), cfg)
}

func deadPool(t *testing.T, addr string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/coco?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// pinClock makes the server's clock read at.
func (ts *testServer) pinClock(at time.Time) { ts.now = func() time.Time { return at } }

// request is one HTTP request in a test; headers are name, value pairs.
func (ts *testServer) request(t *testing.T, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)
	return rec
}

// ingest posts body with the ingest token as JSON.
func (ts *testServer) ingest(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodPost, "/internal/ingest/session_summary", body,
		"Authorization", "Bearer "+ingestToken, "Content-Type", "application/json")
}

// dashboard reads userID's snapshot with token.
func (ts *testServer) dashboard(t *testing.T, userID, token string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodGet, "/api/dashboard/"+userID, "", append([]string{"Authorization", "Bearer " + token}, headers...)...)
}

// liveServer serves a testServer's Handler over real TCP connections, for
// tests whose requests must run concurrently, each on its own connection.
type liveServer struct {
	*httptest.Server
}

func (ts *testServer) listen(t *testing.T) *liveServer {
	t.Helper()
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)
	return &liveServer{srv}
}

// response is what a request to a liveServer got back.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends one request; headers are name, value pairs. It reports failures
// as errors, not through t, so any goroutine may call it.
func (ls *liveServer) do(method, path, body string, headers ...string) (response, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ls.URL+path, r)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := ls.Client().Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(raw)}, nil
}

// ingest posts body with the ingest token as JSON.
func (ls *liveServer) ingest(body string) (response, error) {
	return ls.do(http.MethodPost, "/internal/ingest/session_summary", body,
		"Authorization", "Bearer "+ingestToken, "Content-Type", "application/json")
}

// dashboard reads userID's snapshot with token.
func (ls *liveServer) dashboard(userID, token string, headers ...string) (response, error) {
	return ls.do(http.MethodGet, "/api/dashboard/"+userID, "", append([]string{"Authorization", "Bearer " + token}, headers...)...)
}

// summaryJSON is an ingest body.
func summaryJSON(sessionID, userID string, startedAt time.Time, durationSeconds int, score float64) string {
	b, _ := json.Marshal(map[string]any{
		"session_id":       sessionID,
		"user_external_id": userID,
		"started_at":       startedAt.Format(time.RFC3339Nano),
		"duration_seconds": durationSeconds,
		"sentiment_score":  score,
	})
	return string(b)
}

func expectStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, want, rec.Body)
	}
}

func expectBody(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if got := rec.Body.String(); got != want {
		t.Fatalf("body = %s\nwant   %s", got, want)
	}
}

func expectHeader(t *testing.T, rec *httptest.ResponseRecorder, name, want string) {
	t.Helper()
	if got := rec.Header().Values(name); len(got) != 1 || got[0] != want {
		t.Fatalf("%s = %q, want %q", name, got, want)
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	for _, path := range []string{
		"/", "/nope", "/healthz/", "/HEALTHZ", "/livez/", "/api/dashboard", "/api/dashboard/",
		"/api/dashboard/alice/", "/api/dashboard/alice/extra", "/internal/ingest/session_summary/",
		"/internal/ingest", "/Internal/ingest/session_summary", "//livez",
	} {
		rec := ts.request(t, http.MethodGet, path, "", "Authorization", "Bearer "+adminToken)
		if rec.Code != http.StatusNotFound || rec.Body.String() != `{"detail":"Not Found"}` {
			t.Errorf("GET %s = %d %s, want 404 {\"detail\":\"Not Found\"}", path, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Location"); got != "" {
			t.Errorf("GET %s redirects to %s; want no redirect", path, got)
		}
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/api/dashboard/alice", "GET, HEAD, OPTIONS"},
		{http.MethodDelete, "/api/dashboard/alice", "GET, HEAD, OPTIONS"},
		{http.MethodPut, "/api/dashboard/alice", "GET, HEAD, OPTIONS"},
		{http.MethodPatch, "/api/dashboard/alice", "GET, HEAD, OPTIONS"},
		{http.MethodGet, "/internal/ingest/session_summary", "OPTIONS, POST"},
		{http.MethodHead, "/internal/ingest/session_summary", "OPTIONS, POST"},
		{http.MethodPut, "/internal/ingest/session_summary", "OPTIONS, POST"},
		{http.MethodPost, "/healthz", "GET, HEAD, OPTIONS"},
	} {
		rec := ts.request(t, tc.method, tc.path, "")
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", tc.method, tc.path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if tc.method != http.MethodHead && rec.Body.String() != `{"detail":"Method Not Allowed"}` {
			t.Errorf("%s %s: body = %s", tc.method, tc.path, rec.Body)
		}
	}
}

func TestPlainOptionsListsMethods(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	rec := ts.request(t, http.MethodOptions, "/internal/ingest/session_summary", "")
	expectStatus(t, rec, http.StatusNoContent)
	expectHeader(t, rec, "Allow", "OPTIONS, POST")
}

func TestEveryResponseHasSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/livez"},
		{http.MethodGet, "/healthz"}, // 503
		{http.MethodGet, "/nope"},
		{http.MethodPost, "/livez"},
		{http.MethodPost, "/internal/ingest/session_summary"}, // 401
		{http.MethodOptions, "/livez"},
	} {
		rec := ts.request(t, tc.method, tc.path, "")
		h := rec.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options = %q, want nosniff", tc.method, tc.path, h.Get("X-Content-Type-Options"))
		}
		if h.Get("X-Request-ID") == "" {
			t.Errorf("%s %s: no X-Request-ID", tc.method, tc.path)
		}
		if rec.Body.Len() > 0 && h.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type = %q, want application/json", tc.method, tc.path, h.Get("Content-Type"))
		}
	}
}
