package main

// End-to-end tests: they build the real binary once and run its
// subcommands as an operator would, against databases of their own on the
// TEST_DATABASE_URL server.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/migrations"
	"coco/sql/sqltest"
	"coco/sql/store"
)

var (
	binDir     string
	buildOnce  sync.Once
	binPath    string
	buildError error
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "coco-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// cocoBinary builds ./cmd/coco once per test run and returns its path.
func cocoBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "coco")
		// -buildvcs=auto overrides a GOFLAGS=-buildvcs=false: the version
		// tests want the commit stamped.
		out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildError != nil {
		t.Fatal(buildError)
	}
	return binPath
}

// cocoCmd returns coco with args and exactly the variables in env: nothing
// leaks in from the test's own environment.
func cocoCmd(t *testing.T, ctx context.Context, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	return binaryCmd(ctx, cocoBinary(t), env, args...)
}

// binaryCmd is cocoCmd for the coco binary at bin, such as a previous release.
func binaryCmd(ctx context.Context, bin string, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

type result struct {
	stdout, stderr string
	code           int
}

// runCoco runs coco to completion (at most a minute).
func runCoco(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return runBinary(t, cocoBinary(t), env, args...)
}

// runBinary is runCoco for the coco binary at bin.
func runBinary(t *testing.T, bin string, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := binaryCmd(ctx, bin, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run coco %q: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

func openTestPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

const (
	ingestToken    = "e2e-ingest-token-4f1c"
	dashboardToken = "e2e-dashboard-token-9b2e"
	adminToken     = "e2e-admin-token-77aa"
)

func serveEnv(dbURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":         dbURL,
		"INGEST_SERVICE_TOKEN": ingestToken,
		"DASHBOARD_TOKEN_MAP":  dashboardToken + ":kid-1," + adminToken + ":*",
		"DASHBOARD_ORIGIN":     "http://localhost:3000",
		"APP_ENV":              "test",
		"SHUTDOWN_GRACE":       "5s",
		"DB_TIMEOUT":           "1s",
	}
}

// serveProc is a running `coco serve`.
type serveProc struct {
	cmd         *exec.Cmd
	base        string // http://127.0.0.1:port
	addr        string
	metricsAddr string              // host:port of /metrics, when METRICS_ADDR is set
	listening   map[string]any      // the "listening" log line
	lines       chan map[string]any // its JSON log lines, in order
	done        chan struct{}       // closed when it has exited
	mu          sync.Mutex
	all         bytes.Buffer // everything it wrote
}

// startServe starts `coco serve -addr 127.0.0.1:0` and returns once it has
// logged the address it listens on. It is killed if the test ends first.
func startServe(t *testing.T, env map[string]string, flags ...string) *serveProc {
	t.Helper()
	return startServeBinary(t, cocoBinary(t), env, flags...)
}

// startServeBinary is startServe for the coco binary at bin.
func startServeBinary(t *testing.T, bin string, env map[string]string, flags ...string) *serveProc {
	t.Helper()
	cmd := binaryCmd(context.Background(), bin, env, append([]string{"serve", "-addr", "127.0.0.1:0"}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, lines: make(chan map[string]any, 1000), done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coco serve: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.all.Write(sc.Bytes())
			p.all.WriteByte('\n')
			p.mu.Unlock()
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				p.lines <- line
			}
		}
		cmd.Wait()
		close(p.done)
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	p.listening = p.waitLog(t, "listening", 10*time.Second)
	p.addr, _ = p.listening["addr"].(string)
	p.metricsAddr, _ = p.listening["metrics_addr"].(string)
	p.base = "http://" + p.addr
	return p
}

type lockedWriter struct{ p *serveProc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.all.Write(b)
}

func (p *serveProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.String()
}

// waitLog returns the next log line whose msg is msg.
func (p *serveProc) waitLog(t *testing.T, msg string, within time.Duration) map[string]any {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("coco serve exited before logging %q; output:\n%s", msg, p.output())
			}
			if line["msg"] == msg {
				return line
			}
		case <-timeout:
			t.Fatalf("coco serve did not log %q within %s; output:\n%s", msg, within, p.output())
		}
	}
}

// waitExit waits for the process to exit and returns its status.
func (p *serveProc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("coco serve still running %s after the signal; output:\n%s", within, p.output())
		return -1
	}
}

// reply is one HTTP answer and how long it took to come.
type reply struct {
	status  int
	header  http.Header
	body    string
	elapsed time.Duration
}

// testClient gives up on a request after 10 s, so no test hangs on one.
var testClient = &http.Client{Timeout: 10 * time.Second}

// send sends one request with client and returns the answer or the
// transport error. Unlike call it may run on any goroutine.
func send(client *http.Client, method, url, token, body string) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return reply{elapsed: time.Since(start)}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b), elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("read the body: %w", err)
	}
	return r, nil
}

// call sends one request and returns the status and body.
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	r, err := send(testClient, method, url, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r.status, r.body
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, body := call(t, http.MethodGet, url, "", "")
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s, want %d within %s", url, status, body, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sessionToday returns a start time earlier today (UTC), at least two
// minutes ago when the day is that old.
func sessionToday() time.Time {
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-2 * time.Minute)
	if day := now.Truncate(24 * time.Hour); start.Before(day) {
		start = day
	}
	return start
}

type dashboard struct {
	LastSession struct {
		Timestamp *string `json:"timestamp"`
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
	LastUpdated string `json:"lastUpdated"`
}

func TestServeIngestsAndServesTheDashboardThenShutsDownGracefully(t *testing.T) {
	t.Parallel()
	p := startServe(t, serveEnv(sqltest.URL(t, sqltest.ServerURL(t))))

	if body := waitStatus(t, p.base+"/readyz", http.StatusOK, 10*time.Second); !strings.Contains(body, `"windowDays":7`) {
		t.Errorf("GET /readyz body = %s, want windowDays 7", body)
	}
	if status, _ := call(t, http.MethodGet, p.base+"/livez", "", ""); status != http.StatusOK {
		t.Errorf("GET /livez = %d, want 200", status)
	}

	start := sessionToday()
	session := fmt.Sprintf(`{"session_id":"e2e-1","user_external_id":"kid-1","started_at":%q,"duration_seconds":900,"sentiment_score":0.66}`,
		start.Format(time.RFC3339))
	ingest := p.base + "/internal/ingest/session_summary"
	if status, body := call(t, http.MethodPost, ingest, ingestToken, session); status != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("first ingest = %d %s, want 200 {\"status\":\"ok\"}", status, body)
	}
	if status, body := call(t, http.MethodPost, ingest, ingestToken, session); status != http.StatusOK || !strings.Contains(body, `"duplicate"`) {
		t.Errorf("resent ingest = %d %s, want 200 {\"status\":\"duplicate\"}", status, body)
	}
	if status, _ := call(t, http.MethodPost, ingest, dashboardToken, session); status != http.StatusUnauthorized {
		t.Errorf("ingest with a dashboard token = %d, want 401", status)
	}

	status, body := call(t, http.MethodGet, p.base+"/api/dashboard/kid-1", dashboardToken, "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/dashboard/kid-1 = %d %s, want 200", status, body)
	}
	var d dashboard
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("dashboard body %s: %v", body, err)
	}
	wantEnd := start.Add(900 * time.Second).Format("2006-01-02T15:04:05Z")
	checks := []struct {
		name      string
		got, want any
	}{
		{"lastSession.timestamp", deref(d.LastSession.Timestamp), wantEnd},
		{"streak.days", d.Streak.Days, 1},
		{"streak.dailyActivity", d.Streak.DailyActivity, []bool{false, false, false, false, false, false, true}},
		{"avgDuration.minutes", d.AvgDuration.Minutes, 15},
		{"avgDuration.dailyDurations", d.AvgDuration.DailyDurations, []int{0, 0, 0, 0, 0, 0, 15}},
		{"toneTrend.current", d.ToneTrend.Current, "positive"},
		{"toneTrend.dailySentiment", sentiments(d.ToneTrend.DailySentiment), "[null null null null null null 0.66]"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("dashboard %s = %v, want %v (body %s)", c.name, c.got, c.want, body)
		}
	}
	if status, _ := call(t, http.MethodGet, p.base+"/api/dashboard/kid-2", dashboardToken, ""); status != http.StatusForbidden {
		t.Errorf("GET another user's dashboard = %d, want 403", status)
	}
	if status, _ := call(t, http.MethodGet, p.base+"/api/dashboard/kid-2", adminToken, ""); status != http.StatusOK {
		t.Errorf("GET any dashboard with the * token = %d, want 200", status)
	}

	// A request in flight when SIGTERM arrives: its headers are in, its
	// body is not. It must still be answered before the process exits 0.
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	late := fmt.Sprintf(`{"session_id":"e2e-2","user_external_id":"kid-1","started_at":%q,"duration_seconds":60,"sentiment_score":0.5}`,
		start.Format(time.RFC3339))
	half := len(late) / 2
	fmt.Fprintf(conn, "POST /internal/ingest/session_summary HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		p.addr, ingestToken, len(late), late[:half])
	time.Sleep(200 * time.Millisecond) // let the server read the headers

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	p.waitLog(t, "shutting down", 5*time.Second)
	if _, err := io.WriteString(conn, late[half:]); err != nil {
		t.Fatalf("send the rest of the in-flight request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v; output:\n%s", err, p.output())
	}
	lateBody, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(lateBody), `"ok"`) {
		t.Errorf("in-flight ingest = %d %s, want 200 {\"status\":\"ok\"}", resp.StatusCode, lateBody)
	}

	if code := p.waitExit(t, 5*time.Second); code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0; output:\n%s", code, p.output())
	}
	out := p.output()
	if !strings.Contains(out, `"msg":"stopped"`) {
		t.Errorf("output lacks the \"stopped\" log line:\n%s", out)
	}
	for _, secret := range []string{ingestToken, dashboardToken, adminToken} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains a token (%s...), want none:\n%s", secret[:8], out)
		}
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func sentiments(v []*float64) string {
	parts := make([]string, len(v))
	for i, f := range v {
		if f == nil {
			parts[i] = "null"
		} else {
			parts[i] = strconv.FormatFloat(*f, 'f', -1, 64)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestServeStartsWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback: nothing listens, so every connect is refused.
	p := startServe(t, serveEnv("postgres://coco@127.0.0.1:1/coco?sslmode=disable"))

	if status, _ := call(t, http.MethodGet, p.base+"/livez", "", ""); status != http.StatusOK {
		t.Errorf("GET /livez = %d, want 200 whatever the database", status)
	}
	for _, path := range []string{"/readyz", "/healthz"} {
		if status, body := call(t, http.MethodGet, p.base+path, "", ""); status != http.StatusServiceUnavailable {
			t.Errorf("GET %s = %d %s, want 503 while the database is down", path, status, body)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
	if code := p.waitExit(t, 5*time.Second); code != 0 {
		t.Errorf("exit status after SIGINT = %d, want 0; output:\n%s", code, p.output())
	}
}

func TestServeMigrateFlag(t *testing.T) {
	t.Parallel()
	p := startServe(t, serveEnv(sqltest.EmptyURL(t, "")), "-migrate")
	waitStatus(t, p.base+"/readyz", http.StatusOK, 10*time.Second)
	if out := p.output(); !strings.Contains(out, `"msg":"migrated","from_version":0`) {
		t.Errorf("output lacks a \"migrated\" line from version 0:\n%s", out)
	}

	// With -migrate a database that cannot be migrated stops the start.
	r := runCoco(t, serveEnv("postgres://coco@127.0.0.1:1/coco"), "serve", "-migrate", "-addr", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stdout, `"msg":"start failed"`) {
		t.Errorf("serve -migrate with the database down = %d, stdout %q; want 1 and a \"start failed\" line", r.code, r.stdout)
	}
}

func TestMigrateAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.EmptyURL(t, "")
	// The original FastAPI service's SQLAlchemy form of the URL works as well.
	env := map[string]string{"DATABASE_URL": strings.Replace(dbURL, "postgres://", "postgresql+psycopg://", 1)}
	want := migrations.ExpectedVersion()

	if r := runCoco(t, env, "seed-demo"); r.code != 1 || !strings.Contains(r.stderr, "run `coco migrate`") {
		t.Errorf("seed-demo before migrate = %d %q, want 1 and a hint to run coco migrate", r.code, r.stderr)
	}
	r := runCoco(t, env, "migrate")
	if wantOut := fmt.Sprintf("schema migrated from version 0 to %d\n", want); r.code != 0 || r.stdout != wantOut {
		t.Fatalf("migrate = %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, wantOut)
	}
	got, err := store.NewStore(openTestPool(t, dbURL)).SchemaVersion(context.Background())
	if err != nil || got != want {
		t.Errorf("SchemaVersion after migrate = %d, %v; want %d", got, err, want)
	}
	r = runCoco(t, env, "migrate")
	if wantOut := fmt.Sprintf("schema already at version %d: nothing to do\n", want); r.code != 0 || r.stdout != wantOut {
		t.Errorf("second migrate = %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, wantOut)
	}
}

func TestMigrateRefusesANewerDatabase(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	if _, err := openTestPool(t, dbURL).Exec(context.Background(), `update `+migrations.VersionTable+` set version = version + 1`); err != nil {
		t.Fatal(err)
	}
	r := runCoco(t, map[string]string{"DATABASE_URL": dbURL}, "migrate")
	if r.code != 1 || !strings.Contains(r.stderr, "newer than this binary") {
		t.Errorf("migrate on a newer schema = %d %q, want 1 and \"newer than this binary\"", r.code, r.stderr)
	}
}

var seedLine = regexp.MustCompile(`^seeded demo-user for (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d) \(UTC\): (\d+) stored, (\d+) duplicate\n$`)

// seedCounts runs seed-demo and returns its stored and duplicate counts.
func seedCounts(t *testing.T, env map[string]string, args ...string) (stored, duplicate int, stdout string) {
	t.Helper()
	r := runCoco(t, env, append([]string{"seed-demo", "-user", "demo-user"}, args...)...)
	if r.code != 0 {
		t.Fatalf("seed-demo %q = %d, stderr %q; want 0", args, r.code, r.stderr)
	}
	lines := strings.SplitAfter(r.stdout, "\n")
	m := seedLine.FindStringSubmatch(lines[len(lines)-2])
	if m == nil {
		t.Fatalf("seed-demo stdout = %q, want a last line matching %s", r.stdout, seedLine)
	}
	stored, _ = strconv.Atoi(m[3])
	duplicate, _ = strconv.Atoi(m[4])
	return stored, duplicate, r.stdout
}

func TestSeedDemoIsSafeToRerun(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	env := map[string]string{"DATABASE_URL": dbURL}
	pool := openTestPool(t, dbURL)
	store := store.NewStore(pool)
	ctx := context.Background()

	stored, duplicate, _ := seedCounts(t, env)
	if stored < 4 || duplicate != 0 {
		t.Fatalf("first seed: %d stored, %d duplicate; want at least 4 stored (most of six past days) and 0 duplicate", stored, duplicate)
	}
	var n, future, foreign int
	err := pool.QueryRow(ctx, `
		select count(*),
		       count(*) filter (where s.started_at + make_interval(secs => s.duration_seconds) > now()),
		       count(*) filter (where s.session_id !~ '^demo-demo-user-\d{4}-\d\d-\d\d-[0-3]$'
		                           or s.session_id ~ '-0$' and (s.started_at <> date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'
		                                                        or s.duration_seconds <> 30)
		                           or s.session_id !~ '-0$' and s.duration_seconds not between 300 and 2400
		                           or s.sentiment_score not between 0.3 and 0.9
		                           or s.sentiment_score <> round(s.sentiment_score, 2)
		                           or s.started_at < date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '6 days')
		  from sessions s join users u on u.id = s.user_id where u.external_id = 'demo-user'`).Scan(&n, &future, &foreign)
	if err != nil {
		t.Fatal(err)
	}
	if n != stored || future != 0 || foreign != 0 {
		t.Errorf("stored sessions: %d (%d not ended yet, %d off the demo rules), want %d, 0, 0", n, future, foreign, stored)
	}
	before, err := store.Dashboard(ctx, "demo-user", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if before.DailyActivity[5] == false && before.DailyActivity[4] == false && before.DailyActivity[3] == false {
		t.Errorf("dashboard daily activity %v, want most past days active", before.DailyActivity)
	}

	stored2, duplicate2, _ := seedCounts(t, env)
	if stored2 != 0 || duplicate2 != stored {
		t.Errorf("second seed: %d stored, %d duplicate; want 0 stored and %d duplicate", stored2, duplicate2, stored)
	}
	after, err := store.Dashboard(ctx, "demo-user", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("dashboard changed on rerun:\n before %+v\n after  %+v\nwant it unchanged", before, after)
	}

	stored3, duplicate3, out := seedCounts(t, env, "-reset")
	if !strings.HasPrefix(out, fmt.Sprintf("deleted %d sessions of demo-user\n", stored)) || stored3 != stored || duplicate3 != 0 {
		t.Errorf("seed -reset printed %q, want %d deleted, then %d stored and 0 duplicate", out, stored, stored)
	}
}

func TestRecompute(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	env := map[string]string{"DATABASE_URL": dbURL}
	pool := openTestPool(t, dbURL)
	seedCounts(t, env)

	tests := []struct {
		name   string
		setup  string // SQL run first
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"all", "", []string{"-all"}, 0, "recomputed 1 rollups\n", ""},
		{"one user", "", []string{"-user", "demo-user"}, 0, "recomputed the rollup of demo-user\n", ""},
		{"unknown user", "", []string{"-user", "nobody"}, 1, "", "coco recompute: no user with external id \"nobody\"\n"},
		{"nothing stale", "", []string{"-stale"}, 0, "recomputed 0 stale rollups\n", ""},
		{"a stale rollup", "update dashboard_rollups set window_end = window_end - 1", []string{"--stale"}, 0, "recomputed 1 stale rollups\n", ""},
	}
	for _, tt := range tests { // in order: they share the database
		if tt.setup != "" {
			if _, err := pool.Exec(context.Background(), tt.setup); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		}
		r := runCoco(t, env, append([]string{"recompute"}, tt.args...)...)
		if r.code != tt.code || r.stdout != tt.stdout || (tt.stderr != "" && r.stderr != tt.stderr) {
			t.Errorf("%s: recompute %q = %d, stdout %q, stderr %q; want %d, %q, %q",
				tt.name, tt.args, r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
		}
	}
	var stale bool
	if err := pool.QueryRow(context.Background(), `select bool_or(is_stale) from coco.dashboard_overview`).Scan(&stale); err != nil || stale {
		t.Errorf("a rollup is still stale after recompute -stale (%v), want none", err)
	}
}

func TestBadConfigurationExits2NamingEveryProblem(t *testing.T) {
	t.Parallel()
	r := runCoco(t, map[string]string{
		"PORT":                "0",
		"DASHBOARD_TOKEN_MAP": "tok-SEKRIT:u/1",
		"APP_ENV":             "prod",
	}, "serve")
	if r.code != 2 {
		t.Errorf("exit status = %d, want 2", r.code)
	}
	for _, name := range []string{"DATABASE_URL", "INGEST_SERVICE_TOKEN", "DASHBOARD_TOKEN_MAP", "DASHBOARD_ORIGIN", "APP_ENV", "PORT"} {
		if !strings.Contains(r.stderr, "  - "+name+": ") {
			t.Errorf("stderr does not name %s:\n%s", name, r.stderr)
		}
	}
	if strings.Count(r.stderr, "invalid configuration") != 1 || strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "SEKRIT") {
		t.Errorf("stderr = %q, want one message, no stack trace and no token", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}

	// The operator commands need only the database.
	r = runCoco(t, map[string]string{}, "migrate")
	if want := "coco migrate: invalid configuration:\n  - DATABASE_URL: required, not set\n"; r.code != 2 || r.stderr != want {
		t.Errorf("migrate without DATABASE_URL = %d %q, want 2 %q", r.code, r.stderr, want)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		code   int
		stderr string // a substring
	}{
		{[]string{"-h"}, 0, "With no command, coco serves."},
		{[]string{"help"}, 0, "seed-demo"},
		{[]string{"frobnicate"}, 2, "coco: unknown command \"frobnicate\"\n\nusage: coco [-env-file path] [command] [flags]"},
		{[]string{"serve", "-h"}, 0, "-migrate"},
		{[]string{"-nosuchflag"}, 2, "flag provided but not defined: -nosuchflag"},
		{[]string{"migrate", "-h"}, 0, "usage: coco migrate"},
		{[]string{"migrate", "now"}, 2, "unexpected argument \"now\""},
		{[]string{"seed-demo", "-h"}, 0, "-reset"},
		{[]string{"seed-demo", "-user", "a/b"}, 2, "-user must be an external user id"},
		{[]string{"seed-demo", "-user", "a\u200bb"}, 2, "-user must be an external user id: String should hold only visible characters"},
		{[]string{"seed-demo", "-user", "*"}, 2, "-user must be one external user id, not *"},
		{[]string{"recompute", "-h"}, 0, "-stale"},
		{[]string{"recompute"}, 2, "give exactly one of -user, -all and -stale"},
		{[]string{"recompute", "-all", "-stale"}, 2, "give exactly one of -user, -all and -stale"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCoco(t, map[string]string{}, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("coco %q = %d, stderr %q; want %d and %q in stderr", tt.args, r.code, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}
