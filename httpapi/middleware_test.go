package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/julienschmidt/httprouter"

	"coco/sql/sqltest"
	"coco/sql/store"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)

	for _, tc := range []struct {
		name string
		sent []string // X-Request-ID headers on the request
		keep bool
	}{
		{"sane id is kept", []string{"req-1234.abc:XYZ_9"}, true},
		{"uuid is kept", []string{"0b7f3c1e-8d0a-4f5e-9f7a-1c2b3d4e5f60"}, true},
		{"128 characters are kept", []string{strings.Repeat("a", 128)}, true},
		{"missing id is generated", nil, false},
		{"empty id is replaced", []string{""}, false},
		{"129 characters are replaced", []string{strings.Repeat("a", 129)}, false},
		{"space is replaced", []string{"abc def"}, false},
		{"quote is replaced", []string{`abc"def`}, false},
		{"newline escape is replaced", []string{"abc\\ndef"}, false},
		{"non-ASCII is replaced", []string{"abcé"}, false},
		{"two headers are replaced", []string{"one", "two"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			for _, id := range tc.sent {
				headers = append(headers, "X-Request-ID", id)
			}
			// A 404 and a 401 carry the id too, not just successes.
			for _, path := range []string{"/livez", "/nope", "/api/dashboard/alice"} {
				rec := ts.request(t, http.MethodGet, path, "", headers...)
				got := rec.Header().Values("X-Request-ID")
				if len(got) != 1 {
					t.Fatalf("GET %s: X-Request-ID headers = %q, want one", path, got)
				}
				if tc.keep && got[0] != tc.sent[0] {
					t.Errorf("GET %s: X-Request-ID = %q, want the sent %q", path, got[0], tc.sent[0])
				}
				if !tc.keep && !generated.MatchString(got[0]) {
					t.Errorf("GET %s: X-Request-ID = %q, want a generated 32-hex id", path, got[0])
				}
			}
		})
	}

	a := ts.request(t, http.MethodGet, "/livez", "").Header().Get("X-Request-ID")
	b := ts.request(t, http.MethodGet, "/livez", "").Header().Get("X-Request-ID")
	if a == b {
		t.Errorf("two requests got the same generated id %q", a)
	}
}

func TestRequestLogLine(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	rec := ts.request(t, http.MethodGet, "/livez?token=secret-query", "", "X-Request-ID", "trace-77")
	expectStatus(t, rec, http.StatusOK)

	lines := ts.logs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1: %v", len(lines), lines)
	}
	line := lines[0]
	want := map[string]any{
		"msg": "request", "level": "INFO", "request_id": "trace-77", "method": "GET",
		"path": "/livez", "status": float64(200), "bytes": float64(len(`{"status":"ok"}`)),
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("log duration_ms = %v, want a non-negative number", line["duration_ms"])
	}
	if strings.Contains(ts.logs.String(), "secret-query") {
		t.Errorf("the query string reached the log: %s", ts.logs.String())
	}
}

func TestPanicIsAnOpaque500(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.router.GET("/test/panic", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		w.Header().Set("ETag", `"half-made"`)
		w.Header().Set("Cache-Control", "private, no-cache")
		panic("boom: internal detail 8d1f")
	})

	rec := ts.request(t, http.MethodGet, "/test/panic", "", "X-Request-ID", "panic-req")
	expectStatus(t, rec, http.StatusInternalServerError)
	expectBody(t, rec, `{"detail":"Internal Server Error"}`)
	expectHeader(t, rec, "Content-Type", "application/json")
	expectHeader(t, rec, "X-Request-ID", "panic-req")
	expectHeader(t, rec, "X-Content-Type-Options", "nosniff")
	expectHeader(t, rec, "Cache-Control", "no-store")
	if rec.Header().Get("ETag") != "" {
		t.Errorf("the 500 kept the handler's ETag")
	}

	var sawPanic, sawRequest bool
	for _, line := range ts.logs.lines(t) {
		switch line["msg"] {
		case "panic":
			sawPanic = true
			if line["level"] != "ERROR" || line["request_id"] != "panic-req" ||
				!strings.Contains(line["panic"].(string), "boom") ||
				!strings.Contains(line["stack"].(string), "middleware_test.go") {
				t.Errorf("panic log line lacks level, request id, value or stack: %v", line)
			}
		case "request":
			sawRequest = true
			if line["status"] != float64(500) {
				t.Errorf("request log status = %v, want 500", line["status"])
			}
		}
	}
	if !sawPanic || !sawRequest {
		t.Errorf("want a panic line and a request line, got %s", ts.logs.String())
	}

	// The server keeps serving.
	expectStatus(t, ts.request(t, http.MethodGet, "/livez", ""), http.StatusOK)
}

// A panic after the response has started cannot become a 500; the
// connection is aborted instead, so the client does not take a truncated
// body for a complete one.
func TestPanicAfterWriteAbortsTheResponse(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.router.GET("/test/half", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		_, _ = w.Write([]byte(`{"partial":`))
		panic("half way")
	})
	if got := servePanicking(t, ts, "/test/half"); got != http.ErrAbortHandler {
		t.Fatalf("panic value = %v, want http.ErrAbortHandler", got)
	}
	if !strings.Contains(ts.logs.String(), "half way") {
		t.Errorf("the original panic was not logged: %s", ts.logs.String())
	}
}

// http.ErrAbortHandler is a deliberate abort: it passes through unlogged.
func TestErrAbortHandlerPassesThrough(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.router.GET("/test/abort", func(http.ResponseWriter, *http.Request, httprouter.Params) {
		panic(http.ErrAbortHandler)
	})
	if got := servePanicking(t, ts, "/test/abort"); got != http.ErrAbortHandler {
		t.Fatalf("panic value = %v, want http.ErrAbortHandler", got)
	}
	if strings.Contains(ts.logs.String(), `"msg":"panic"`) {
		t.Errorf("a deliberate abort was logged as a panic: %s", ts.logs.String())
	}
}

func servePanicking(t *testing.T, ts *testServer, path string) (recovered any) {
	t.Helper()
	defer func() { recovered = recover() }()
	ts.request(t, http.MethodGet, path, "")
	return nil
}

func TestSaneRequestID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"a": true, "A-Z.0_9:x": true, strings.Repeat("z", 128): true,
		"": false, strings.Repeat("z", 129): false, "a b": false, "a\x00": false, "a/b": false, "ä": false,
	} {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestLogDurationIsMeasured(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.router.GET("/test/slow", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		time.Sleep(20 * time.Millisecond)
		writeJSON(w, http.StatusOK, statusBody{"ok"})
	})
	ts.request(t, http.MethodGet, "/test/slow", "")
	lines := ts.logs.lines(t)
	if d, _ := lines[len(lines)-1]["duration_ms"].(float64); d < 20 {
		t.Errorf("duration_ms = %v, want >= 20", d)
	}
}

// The log is read by more people than the database is: it must never hold
// a token, an Authorization header or what a request body said (beyond the
// validated user id, which the log names on purpose).
func TestLogsNeverCarrySecrets(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	server := func(pool *pgxpool.Pool) *testServer {
		return &testServer{Server: New(store.NewStore(pool), logger, testConfig()), pool: pool, logs: logs}
	}
	live := server(sqltest.Pool(t))
	brokenPool := sqltest.Pool(t)
	if _, err := brokenPool.Exec(t.Context(), `drop table dashboard_rollups, sessions, users cascade`); err != nil {
		t.Fatal(err)
	}
	broken := server(brokenPool) // every store call fails with a plain SQL error: 500
	dead := server(setupDeadDB(t).pool)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})

	const marker = "body-marker-5e1d"
	const wrongToken = "wrong-token-9c2f"
	payload := func(duration string) string {
		return strings.Replace(body(map[string]string{
			"session_id": `"sess-` + marker + `"`, "user_external_id": `"alice"`,
			"started_at": `"` + time.Now().UTC().Format(time.RFC3339) + `"`, "duration_seconds": duration,
		}), "{", `{"note":"`+marker+`",`, 1)
	}
	for _, tc := range []struct {
		ts     *testServer
		status int
		do     func(ts *testServer) *httptest.ResponseRecorder
	}{
		{live, 200, func(ts *testServer) *httptest.ResponseRecorder { return ts.ingest(t, payload("60")) }},
		{live, 200, func(ts *testServer) *httptest.ResponseRecorder { return ts.dashboard(t, "alice", aliceToken) }},
		{live, 200, func(ts *testServer) *httptest.ResponseRecorder { return ts.dashboard(t, "alice", adminToken) }},
		{live, 401, func(ts *testServer) *httptest.ResponseRecorder { return ts.dashboard(t, "alice", wrongToken) }},
		{live, 401, func(ts *testServer) *httptest.ResponseRecorder {
			return ts.request(t, http.MethodPost, "/internal/ingest/session_summary", payload("60"), "Authorization", "Bearer "+wrongToken)
		}},
		{live, 403, func(ts *testServer) *httptest.ResponseRecorder { return ts.dashboard(t, "alice", bobToken) }},
		{live, 422, func(ts *testServer) *httptest.ResponseRecorder { return ts.ingest(t, payload("-1")) }},
		{live, 409, func(ts *testServer) *httptest.ResponseRecorder { return ts.ingest(t, payload("61")) }},
		{broken, 500, func(ts *testServer) *httptest.ResponseRecorder { return ts.ingest(t, payload("60")) }},
		{broken, 500, func(ts *testServer) *httptest.ResponseRecorder { return ts.dashboard(t, "alice", aliceToken) }},
		{dead, 503, func(ts *testServer) *httptest.ResponseRecorder { return ts.ingest(t, payload("60")) }},
		{dead, 503, func(ts *testServer) *httptest.ResponseRecorder { return ts.dashboard(t, "alice", aliceToken) }},
	} {
		rec := tc.do(tc.ts)
		expectStatus(t, rec, tc.status)
		if tc.status == 500 {
			expectBody(t, rec, `{"detail":"Internal Server Error"}`)
		}
	}

	statuses := map[float64]bool{}
	var errorLines int
	for _, line := range logs.lines(t) {
		raw, _ := json.Marshal(line)
		for _, secret := range []string{ingestToken, aliceToken, bobToken, adminToken, wrongToken, "Authorization", "Bearer", marker} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("log line contains %q: %s", secret, raw)
			}
		}
		switch line["msg"] {
		case "request":
			statuses[line["status"].(float64)] = true
			// An ingest refused at auth never read the body, so it knows no user.
			unread := line["method"] == "POST" && line["status"] == float64(401)
			if line["user_id"] != "alice" && !unread {
				t.Errorf("request line without user_id alice: %s", raw)
			}
		case "request failed":
			errorLines++
			if line["level"] != "ERROR" || line["error"] == "" || line["request_id"] == "" {
				t.Errorf("error line lacks level, error or request id: %s", raw)
			}
		}
	}
	for _, status := range []float64{200, 401, 403, 422, 409, 500, 503} {
		if !statuses[status] {
			t.Errorf("no request line with status %v", status)
		}
	}
	if errorLines != 2 {
		t.Errorf("got %d error lines, want one per 500", errorLines)
	}
}
