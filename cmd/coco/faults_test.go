package main

// Database fault tests: the real binary against a PostgreSQL server of the
// test's own (internal/localpg), which the test stops, kills, freezes and starts
// again while requests run. serveEnv sets DB_TIMEOUT to 1s.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/internal/localpg"
	"coco/sql/migrations"
	"coco/sql/sqltest"
)

// faultDeadline is how long a 503 may take with DB_TIMEOUT=1s: the deadline
// itself plus the slack of a loaded test machine running under -race.
const faultDeadline = 2500 * time.Millisecond

const unavailableBody = `{"detail":"database unavailable"}`

// faultCluster starts a PostgreSQL server of the test's own, migrated when
// migrate is true, and removes it when the test ends.
func faultCluster(t *testing.T, migrate bool) *localpg.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := localpg.StartTemp(ctx)
	if err != nil {
		t.Fatalf("start a PostgreSQL server: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("remove the PostgreSQL server: %v", err)
		}
	})
	if migrate {
		migrateCluster(t, c)
	}
	return c
}

func migrateCluster(t *testing.T, c *localpg.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Migrate(ctx, cfg, migrations.Options{}); err != nil {
		t.Fatal(err)
	}
}

// killServer kills c's server processes with SIGKILL (localpg.Cluster.Kill).
func killServer(t *testing.T, c *localpg.Cluster) {
	t.Helper()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
}

// restartCluster starts c again on its port.
func restartCluster(t *testing.T, c *localpg.Cluster) {
	t.Helper()
	if err := c.Restart(); err != nil {
		t.Fatalf("restart the PostgreSQL server: %v", err)
	}
}

// poll calls cond until it is true and fails the test if it is still false
// after within.
func poll(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var sessionSeq atomic.Int64

// sessionJSON is a valid session summary for user, started earlier today.
func sessionJSON(id, user string) string {
	return fmt.Sprintf(`{"session_id":%q,"user_external_id":%q,"started_at":%q,"duration_seconds":600,"sentiment_score":0.7}`,
		id, user, sessionToday().Format(time.RFC3339))
}

// probe is one kind of request a client of coco makes.
type probe struct {
	name, method, path, token string
	body                      func() string // a fresh body for each request
}

// probes are the routes that touch the database: every one must answer 503
// database unavailable while it is unreachable.
var probes = []probe{
	{"ingest", http.MethodPost, "/internal/ingest/session_summary", ingestToken, func() string {
		return sessionJSON(fmt.Sprintf("fault-%d", sessionSeq.Add(1)), "kid-1")
	}},
	{"dashboard", http.MethodGet, "/api/dashboard/kid-1", dashboardToken, nil},
	{"healthz", http.MethodGet, "/healthz", "", nil},
	{"readyz", http.MethodGet, "/readyz", "", nil},
}

func (pr probe) send(p *serveProc) (reply, error) {
	body := ""
	if pr.body != nil {
		body = pr.body()
	}
	return send(testClient, pr.method, p.base+pr.path, pr.token, body)
}

// healthy reports whether r is the answer of a working service to pr.
func (pr probe) healthy(r reply) bool {
	switch pr.name {
	case "ingest":
		return r.status == http.StatusOK && r.body == `{"status":"ok"}`
	case "readyz":
		return r.status == http.StatusOK && r.body == `{"status":"ready","windowDays":7}`
	}
	return r.status == http.StatusOK
}

// probeAll sends every probe at once.
func probeAll(p *serveProc) ([]reply, []error) {
	replies := make([]reply, len(probes))
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, pr := range probes {
		wg.Go(func() { replies[i], errs[i] = pr.send(p) })
	}
	wg.Wait()
	return replies, errs
}

// wantUnavailable checks that r is the answer while the database is
// unreachable: 503 database unavailable with Retry-After, within the deadline.
func wantUnavailable(t *testing.T, what string, r reply, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v, want a 503", what, err)
		return
	}
	if r.status != http.StatusServiceUnavailable || r.body != unavailableBody {
		t.Errorf("%s = %d %s, want 503 %s", what, r.status, r.body, unavailableBody)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After header, want one on a 503", what)
	}
	if r.elapsed > faultDeadline {
		t.Errorf("%s took %s, want the answer within %s (DB_TIMEOUT 1s)", what, r.elapsed.Round(time.Millisecond), faultDeadline)
	}
}

// wantAllUnavailable sends every probe and checks each answer is a prompt
// 503, and that /livez still answers 200.
func wantAllUnavailable(t *testing.T, p *serveProc, when string) {
	t.Helper()
	replies, errs := probeAll(p)
	for i, pr := range probes {
		wantUnavailable(t, pr.name+" "+when, replies[i], errs[i])
	}
	if status, body := call(t, http.MethodGet, p.base+"/livez", "", ""); status != http.StatusOK {
		t.Errorf("GET /livez %s = %d %s, want 200: liveness never depends on the database", when, status, body)
	}
}

// waitRecovered polls every probe until all answer as a healthy service
// does in the same round. Meanwhile each answer must be a 200 or a 503, never
// a 500. It returns how many 503s came before recovery.
func waitRecovered(t *testing.T, p *serveProc, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	unavailable := 0
	for {
		replies, errs := probeAll(p)
		ok := true
		for i, pr := range probes {
			switch r, err := replies[i], errs[i]; {
			case err != nil:
				t.Fatalf("%s while the database comes back: %v", pr.name, err)
			case pr.healthy(r):
			case r.status == http.StatusServiceUnavailable:
				unavailable++
				ok = false
			default:
				t.Fatalf("%s while the database comes back = %d %s, want 200 or 503; coco's errors:\n%s",
					pr.name, r.status, r.body, errorLines(p))
			}
		}
		if ok {
			return unavailable
		}
		if time.Now().After(deadline) {
			t.Fatalf("coco still answers 503 %s after the database came back; output:\n%s", within, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// errorLines returns the lines coco logged at level ERROR.
func errorLines(p *serveProc) string {
	var b strings.Builder
	for line := range strings.Lines(p.output()) {
		if strings.Contains(line, `"level":"ERROR"`) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// wantNo500 checks that coco answered no request with a 500, as its request
// log says: a database fault is a 503, whatever it is.
func wantNo500(t *testing.T, p *serveProc) {
	t.Helper()
	if strings.Contains(p.output(), `"status":500`) {
		t.Errorf("coco answered a 500, want only 200s and 503s; its errors:\n%s", errorLines(p))
	}
}

// startWarm starts coco with env and waits until it is ready and has
// database connections in its pool.
func startWarm(t *testing.T, env map[string]string) *serveProc {
	t.Helper()
	p := startServe(t, env)
	waitStatus(t, p.base+"/readyz", http.StatusOK, 10*time.Second)
	if n := waitRecovered(t, p, 5*time.Second); n != 0 {
		t.Fatalf("%d answers were 503 with the database up, want none", n)
	}
	return p
}

func TestDatabaseStoppedWhileServing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stop func(t *testing.T, c *localpg.Cluster)
		// down: requests come while the server is down; otherwise it is
		// back before the next request, and every pooled connection is dead.
		down bool
	}{
		{"fast shutdown", func(t *testing.T, c *localpg.Cluster) {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"server killed", killServer, true},
		{"restarted between two requests", func(t *testing.T, c *localpg.Cluster) {
			if err := c.Restart(); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := faultCluster(t, true)
			p := startWarm(t, serveEnv(c.URL()))

			tt.stop(t, c)
			if tt.down {
				// The first round meets the pooled connections of the dead
				// server, the second has to dial.
				wantAllUnavailable(t, p, "right after the database stopped")
				wantAllUnavailable(t, p, "while the database is down")
				restartCluster(t, c)
			}
			n := waitRecovered(t, p, 10*time.Second)
			t.Logf("%d answers were 503 after the restart before every route answered 200", n)
			// Each dead pooled connection fails one request, then the pool
			// drops it: pgxpool's default size is max(4, CPUs).
			if pool := max(4, runtime.NumCPU()); n > pool {
				t.Errorf("%d answers were 503 after the database came back, want at most one per pooled connection (%d)", n, pool)
			}
			wantNo500(t, p)
		})
	}
}

// blocker holds a SHARE lock on sessions in an open transaction, so every
// ingest waits inside the database, in flight, until it is released.
type blocker struct {
	lock, watch *pgx.Conn
	tx          pgx.Tx
}

func blockIngests(t *testing.T, dbURL string) *blocker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := &blocker{}
	var err error
	if b.lock, err = pgx.Connect(ctx, dbURL); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { b.lock.Close(context.Background()) })
	// pg_stat_activity is read on a connection of its own: inside a
	// transaction it is a snapshot that never changes.
	if b.watch, err = pgx.Connect(ctx, dbURL); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { b.watch.Close(context.Background()) })
	if b.tx, err = b.lock.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.tx.Exec(ctx, `lock table sessions in share mode`); err != nil {
		t.Fatal(err)
	}
	return b
}

// waiting returns the coco backends of this database that wait for a lock.
func (b *blocker) waiting(t *testing.T) []int32 {
	t.Helper()
	var pids []int32
	err := b.watch.QueryRow(context.Background(), `
		select coalesce(array_agg(pid order by pid), '{}') from pg_stat_activity
		 where datname = current_database() and application_name = 'coco' and wait_event_type = 'Lock'`).Scan(&pids)
	if err != nil {
		t.Fatalf("read pg_stat_activity: %v", err)
	}
	return pids
}

// waitBlocked waits until n coco backends wait for the lock and returns them.
func (b *blocker) waitBlocked(t *testing.T, n int, within time.Duration) []int32 {
	t.Helper()
	var pids []int32
	poll(t, fmt.Sprintf("%d ingests to wait for the lock", n), within, func() bool {
		pids = b.waiting(t)
		return len(pids) >= n
	})
	return pids
}

// release ends the lock: the waiting ingests go on.
func (b *blocker) release() error {
	return b.tx.Rollback(context.Background())
}

// inFlight sends pr in the background; the channel yields its answer.
func inFlight(p *serveProc, pr probe) <-chan func() (reply, error) {
	ch := make(chan func() (reply, error), 1)
	go func() {
		r, err := pr.send(p)
		ch <- func() (reply, error) { return r, err }
	}()
	return ch
}

func TestDatabaseBackendDiesMidQuery(t *testing.T) {
	t.Parallel()
	c := faultCluster(t, true)
	p := startWarm(t, serveEnv(c.URL()))

	tests := []struct {
		name string
		kill func(t *testing.T, b *blocker, pid int32)
	}{
		// SIGTERM: the backend sends FATAL 57P01 admin_shutdown, then closes.
		{"pg_terminate_backend", func(t *testing.T, b *blocker, pid int32) {
			if _, err := b.watch.Exec(context.Background(), `select pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
		}},
		// SIGKILL: the connection just ends, with no message; the
		// postmaster then restarts every backend (crash recovery).
		{"backend SIGKILL", func(t *testing.T, _ *blocker, pid int32) {
			if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
				t.Fatalf("SIGKILL backend %d: %v", pid, err)
			}
		}},
	}
	for _, tt := range tests { // in order: they share the server
		b := blockIngests(t, c.URL())
		answer := inFlight(p, probes[0])
		pids := b.waitBlocked(t, 1, 900*time.Millisecond)
		tt.kill(t, b, pids[0])
		r, err := (<-answer)()
		wantUnavailable(t, "ingest whose backend died ("+tt.name+")", r, err)
		_ = b.release() // fails after the crash restart, which ended it anyway
		n := waitRecovered(t, p, 10*time.Second)
		t.Logf("%s: %d answers were 503 before every route answered 200", tt.name, n)
	}
	wantNo500(t, p)
}

func TestDatabaseFrozenWhileServing(t *testing.T) {
	t.Parallel()
	c := faultCluster(t, true)
	p := startWarm(t, serveEnv(c.URL()))

	// One ingest is inside the database when it freezes.
	b := blockIngests(t, c.URL())
	answer := inFlight(p, probes[0])
	b.waitBlocked(t, 1, 900*time.Millisecond)
	if err := c.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			c.Thaw()
		}
	})
	r, err := (<-answer)()
	wantUnavailable(t, "ingest in flight when the database froze", r, err)
	// The kernel still accepts connections for the frozen server: the
	// second round waits for the connect timeout, not a refusal.
	wantAllUnavailable(t, p, "right after the database froze")
	wantAllUnavailable(t, p, "while the database is frozen")

	if err := c.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	if err := b.release(); err != nil {
		t.Fatalf("release the lock after the thaw: %v", err)
	}
	n := waitRecovered(t, p, 10*time.Second)
	t.Logf("%d answers were 503 after the thaw before every route answered 200", n)
	wantNo500(t, p)
}

func TestServeBecomesReadyWhenTheDatabaseAppears(t *testing.T) {
	t.Parallel()
	c := faultCluster(t, false)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// The port is the stopped server's: nothing listens on it until Restart.
	p := startServe(t, serveEnv(c.URL()))
	wantAllUnavailable(t, p, "before the database ever started")

	restartCluster(t, c)
	waitStatus(t, p.base+"/healthz", http.StatusOK, 10*time.Second)
	// Reachable but not migrated: still not ready, and it says why.
	status, body := call(t, http.MethodGet, p.base+"/readyz", "", "")
	if status != http.StatusServiceUnavailable || !strings.HasPrefix(body, `{"detail":"database schema is at version 0,`) {
		t.Errorf("GET /readyz on an unmigrated database = %d %s, want 503 naming schema version 0", status, body)
	}

	migrateCluster(t, c)
	waitStatus(t, p.base+"/readyz", http.StatusOK, 10*time.Second)
	if status, body := call(t, http.MethodPost, p.base+"/internal/ingest/session_summary", ingestToken,
		sessionJSON("appears-1", "kid-1")); status != http.StatusOK || body != `{"status":"ok"}` {
		t.Errorf("ingest once the database is up = %d %s, want 200 ok", status, body)
	}
	wantNo500(t, p)
}

// outcome is one request of a simulated device.
type outcome struct {
	device  int
	session string
	attempt int // 1 for the first send of session
	r       reply
	err     error
	at      time.Time // when the answer came
}

// devices simulates n devices that each ingest fresh sessions back to
// back. With resend, a device sends a session again after a 503 or a
// network error, as the real device does; without, it stops at the first
// network error.
type devices struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	outcomes []outcome
}

func startDevices(t *testing.T, p *serveProc, client *http.Client, n int, user func(device int) string, resend bool) *devices {
	d := &devices{stop: make(chan struct{})}
	for i := range n {
		d.wg.Go(func() {
			// Bounded, whatever happens to the test's own deadlines.
			for seq := 0; seq < 2000; seq++ {
				session := fmt.Sprintf("dev%d-%d", i, seq)
				body := sessionJSON(session, user(i))
				for attempt := 1; attempt <= 500; attempt++ {
					select {
					case <-d.stop:
						return
					default:
					}
					r, err := send(client, http.MethodPost, p.base+"/internal/ingest/session_summary", ingestToken, body)
					d.mu.Lock()
					d.outcomes = append(d.outcomes, outcome{i, session, attempt, r, err, time.Now()})
					d.mu.Unlock()
					if err == nil && r.status == http.StatusOK {
						break
					}
					if err != nil && !resend {
						return
					}
					time.Sleep(20 * time.Millisecond) // the device's back-off
				}
			}
		})
	}
	t.Cleanup(d.halt)
	return d
}

// halt stops every device and waits for them.
func (d *devices) halt() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.wg.Wait()
}

func (d *devices) count(f func(o outcome) bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, o := range d.outcomes {
		if f(o) {
			n++
		}
	}
	return n
}

func (d *devices) all() []outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.outcomes)
}

func isStored(o outcome) bool {
	return o.err == nil && o.r.status == http.StatusOK && o.r.body == `{"status":"ok"}`
}

func isUnavailable(o outcome) bool {
	return o.err == nil && o.r.status == http.StatusServiceUnavailable
}

// storedSessions returns the session ids in the sessions table.
func storedSessions(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `select session_id from sessions`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	stored := make(map[string]bool, len(ids))
	for _, id := range ids {
		stored[id] = true
	}
	return stored
}

// wantRollupsCurrent checks that coco.rollup_drift is empty: every user with
// sessions has a rollup, equal to a fresh recompute of its window.
func wantRollupsCurrent(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var drift int
	if err := conn.QueryRow(ctx, `select count(*) from coco.rollup_drift`).Scan(&drift); err != nil {
		t.Fatal(err)
	}
	if drift != 0 {
		t.Errorf("%d users' rollups are missing or differ from a fresh recompute; want none", drift)
	}
}

func TestNoAcceptedIngestIsLostAcrossDatabaseRestarts(t *testing.T) {
	t.Parallel()
	c := faultCluster(t, true)
	p := startWarm(t, serveEnv(c.URL()))

	const n = 4
	// Two devices per user: concurrent writers on each rollup.
	d := startDevices(t, p, testClient, n, func(i int) string { return fmt.Sprintf("kid-%d", i%2) }, true)
	// A dashboard polls meanwhile.
	var reads, readsOK atomic.Int64
	var badRead atomic.Value
	stopReads := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for i := 0; i < 5000; i++ {
			select {
			case <-stopReads:
				return
			default:
			}
			r, err := send(testClient, http.MethodGet, p.base+fmt.Sprintf("/api/dashboard/kid-%d", i%2), adminToken, "")
			reads.Add(1)
			switch {
			case err != nil:
				badRead.CompareAndSwap(nil, err.Error())
			case r.status == http.StatusOK:
				readsOK.Add(1)
			case r.status != http.StatusServiceUnavailable:
				badRead.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.status, r.body))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() {
		close(stopReads)
		readers.Wait()
	}()

	stored := func() int { return d.count(isStored) }
	waitOKs := func(when string) {
		t.Helper()
		base := stored()
		poll(t, fmt.Sprintf("%d more ingests to be stored %s", 3*n, when), 15*time.Second, func() bool { return stored() >= base+3*n })
	}
	waitUnavailable := func(when string) {
		t.Helper()
		base := d.count(isUnavailable)
		poll(t, fmt.Sprintf("%d ingests to answer 503 %s", n, when), 10*time.Second, func() bool { return d.count(isUnavailable) >= base+n })
	}

	waitOKs("before any fault")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	waitUnavailable("while the database is stopped")
	restartCluster(t, c)
	waitOKs("after the restart")
	killServer(t, c)
	waitUnavailable("after the server was killed")
	restartCluster(t, c)
	waitOKs("after the crash recovery")
	d.halt()

	inDB := storedSessions(t, c.URL())
	sent := map[string]bool{}
	for id := range inDB {
		if strings.HasPrefix(id, "fault-") { // startWarm's
			sent[id] = true
		}
	}
	var ok, duplicate, unavailable int
	for _, o := range d.all() {
		sent[o.session] = true
		switch {
		case o.err != nil:
			t.Errorf("device %d, %s attempt %d: %v; want an answer, coco never went down", o.device, o.session, o.attempt, o.err)
		case isStored(o):
			ok++
			if !inDB[o.session] {
				t.Errorf("%s was answered 200 ok but is not in the sessions table", o.session)
			}
		case o.r.status == http.StatusOK && o.r.body == `{"status":"duplicate"}`:
			// Only a resend may be a duplicate: the first send was stored
			// though its answer was a 503.
			duplicate++
			if o.attempt == 1 {
				t.Errorf("%s: first send answered duplicate, want ok", o.session)
			}
			if !inDB[o.session] {
				t.Errorf("%s was answered duplicate but is not in the sessions table", o.session)
			}
		case isUnavailable(o):
			unavailable++
			if o.r.body != unavailableBody || o.r.header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 %s (Retry-After %q), want %s with Retry-After", o.session, o.r.body, o.r.header.Get("Retry-After"), unavailableBody)
			}
		default:
			t.Errorf("%s attempt %d = %d %s, want 200 or 503", o.session, o.attempt, o.r.status, o.r.body)
		}
	}
	for id := range inDB {
		if !sent[id] {
			t.Errorf("session %s is stored but no device sent it", id)
		}
	}
	if v := badRead.Load(); v != nil {
		t.Errorf("a dashboard read answered %v, want only 200 and 503", v)
	}
	if readsOK.Load() == 0 {
		t.Errorf("none of %d dashboard reads answered 200, want some", reads.Load())
	}
	wantRollupsCurrent(t, c.URL())
	wantNo500(t, p)
	t.Logf("%d ok, %d duplicate, %d unavailable; %d sessions stored; %d dashboard reads, %d answered 200",
		ok, duplicate, unavailable, len(inDB), reads.Load(), readsOK.Load())
}

func TestGracefulShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	env := serveEnv(dbURL)
	// Long enough for the ingests held in the database below.
	env["DB_TIMEOUT"] = "5s"
	env["SHUTDOWN_GRACE"] = "8s"
	env["SHUTDOWN_DRAIN"] = "1s"
	p := startServe(t, env)
	waitStatus(t, p.base+"/readyz", http.StatusOK, 10*time.Second)

	// A connection per request: once the listener is closed a device's
	// next request is refused, not sent on a connection being closed.
	client := &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	const n = 4
	d := startDevices(t, p, client, n, func(i int) string { return fmt.Sprintf("kid-%d", i) }, false)
	poll(t, "every device to store a few sessions", 15*time.Second, func() bool {
		for i := range n {
			if d.count(func(o outcome) bool { return o.device == i && isStored(o) }) < 3 {
				return false
			}
		}
		return true
	})

	// Hold every device's next ingest inside the database, so that each
	// is surely in flight when SIGTERM comes.
	b := blockIngests(t, dbURL)
	b.waitBlocked(t, n, 4*time.Second)
	sigterm := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	// During SHUTDOWN_DRAIN coco still serves, and /readyz tells load
	// balancers to stop routing here. It answers that without the database,
	// whose connections the held ingests occupy; a probe sent before the
	// signal was handled waits for one, hence the short timeout.
	quick := &http.Client{Timeout: 200 * time.Millisecond}
	poll(t, "/readyz to answer 503 while draining", time.Second, func() bool {
		r, err := send(quick, http.MethodGet, p.base+"/readyz", "", "")
		return err == nil && r.status == http.StatusServiceUnavailable
	})
	if status, _ := call(t, http.MethodGet, p.base+"/livez", "", ""); status != http.StatusOK {
		t.Errorf("GET /livez while draining = %d, want 200", status)
	}
	poll(t, "the listener to close", 5*time.Second, func() bool {
		conn, err := net.Dial("tcp", p.addr)
		if err == nil {
			conn.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	select {
	case <-p.done:
		t.Fatalf("coco exited with ingests still in flight; output:\n%s", p.output())
	default:
	}
	if err := b.release(); err != nil {
		t.Fatal(err)
	}
	code := p.waitExit(t, 10*time.Second)
	poll(t, "every device to find the listener closed", 5*time.Second, func() bool {
		for i := range n {
			if d.count(func(o outcome) bool { return o.device == i && o.err != nil }) == 0 {
				return false
			}
		}
		return true
	})
	if code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0; output:\n%s", code, p.output())
	}
	if took := time.Since(sigterm); took > 8*time.Second {
		t.Errorf("coco took %s to exit, want less than SHUTDOWN_GRACE (8s)", took)
	}
	d.halt()

	inDB := storedSessions(t, dbURL)
	answered := map[string]bool{}
	afterSignal := 0
	for i := range n {
		var last outcome
		for _, o := range d.all() {
			if o.device != i {
				continue
			}
			last = o
			if o.err != nil {
				// The request never reached a handler, so nothing of it
				// may be stored: coco must not cut off a request it took.
				if inDB[o.session] {
					t.Errorf("device %d: %s is stored but its request ended in %v, want a response", i, o.session, o.err)
				}
				continue
			}
			answered[o.session] = true
			if !isStored(o) {
				t.Errorf("device %d: %s = %d %s, want 200 ok", i, o.session, o.r.status, o.r.body)
				continue
			}
			if !inDB[o.session] {
				t.Errorf("device %d: %s was answered 200 ok but is not in the sessions table", i, o.session)
			}
			if o.at.After(sigterm) {
				afterSignal++
			}
		}
		if last.err == nil {
			t.Errorf("device %d: last request got %d, want the device to have stopped at a refused connection", i, last.r.status)
		} else if !errors.Is(last.err, syscall.ECONNREFUSED) {
			t.Logf("device %d: last request ended in %v (not stored)", i, last.err)
		}
	}
	if afterSignal < n {
		t.Errorf("%d ingests in flight at SIGTERM were answered 200 ok, want %d", afterSignal, n)
	}
	for id := range inDB {
		if !answered[id] {
			t.Errorf("session %s is stored but its request got no answer", id)
		}
	}
	wantRollupsCurrent(t, dbURL)
	wantNo500(t, p)
	if out := p.output(); !strings.Contains(out, `"msg":"stopped"`) {
		t.Errorf("output lacks the \"stopped\" log line:\n%s", out)
	}
}
