package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"coco/internal/localpg"
	"coco/sql/migrations"
	"coco/sql/store"
)

// The primary of the read-replica tests: a PostgreSQL of their own, since
// each test starts, pauses, stops or freezes a streaming standby of it.
var replicaPrimary struct {
	once    sync.Once
	cluster *localpg.Cluster
	err     error
	// Base backups taken at once abort each other's (their checkpoints).
	backups sync.Mutex
}

func TestMain(m *testing.M) {
	code := m.Run()
	if c := replicaPrimary.cluster; c != nil {
		c.Remove()
	}
	os.Exit(code)
}

func primaryCluster(t *testing.T) *localpg.Cluster {
	t.Helper()
	replicaPrimary.once.Do(func() {
		ctx := context.Background()
		c, err := localpg.StartTemp(ctx)
		if err == nil {
			replicaPrimary.cluster = c
			err = migratedTemplate(ctx, c)
		}
		replicaPrimary.err = err
	})
	if replicaPrimary.err != nil {
		t.Fatalf("start a primary: %v", replicaPrimary.err)
	}
	return replicaPrimary.cluster
}

// migratedTemplate creates the database coco_template on c and migrates it.
// (pgtestdb keeps its templates per process, on the first server it used.)
func migratedTemplate(ctx context.Context, c *localpg.Cluster) error {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `create database coco_template`); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(databaseURL(c, c.Port(), "coco_template"))
	if err != nil {
		return err
	}
	_, err = migrations.Migrate(ctx, cfg, migrations.Options{})
	return err
}

func databaseURL(c *localpg.Cluster, port int, name string) string {
	u, _ := url.Parse(c.URL())
	u.Host = "127.0.0.1:" + strconv.Itoa(port)
	u.Path = "/" + name
	return u.String()
}

var replicaDatabases atomic.Int64

// replicaDatabase creates a migrated database on the primary for t and
// returns its name.
func replicaDatabase(t *testing.T, primary *localpg.Cluster) string {
	t.Helper()
	name := fmt.Sprintf("replica_%d", replicaDatabases.Add(1))
	conn, err := pgx.Connect(t.Context(), primary.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `create database `+name+` template coco_template`); err != nil {
		t.Fatal(err)
	}
	return name
}

// replicated is a database on the primary with a hot standby streaming it,
// and two servers on it: routed reads from the standby while it is in use,
// direct only ever uses the primary.
type replicated struct {
	standby  *localpg.Cluster
	standbys *store.Standbys
	routed   *testServer
	direct   *testServer
	replica  *pgxpool.Pool // on the standby, for the tests' own queries
	name     string        // the standby's host:port, as read_from names it
}

func setupReplicated(t *testing.T, maxLag time.Duration) *replicated {
	t.Helper()
	primary := primaryCluster(t)
	name := replicaDatabase(t, primary)
	replicaPrimary.backups.Lock()
	standby, err := primary.StartStandby(t.Context())
	replicaPrimary.backups.Unlock()
	if err != nil {
		t.Fatalf("start a standby: %v", err)
	}
	t.Cleanup(func() { standby.Remove() })
	standbyURL := databaseURL(primary, standby.Port(), name)

	primaryPool := openPool(t, databaseURL(primary, primary.Port(), name))
	replica := openPool(t, standbyURL)
	// The standby replays the CREATE DATABASE a moment after the primary ran it.
	waitFor(t, 10*time.Second, "the test database on the standby", func() bool {
		return replica.Ping(t.Context()) == nil
	})

	r := &replicated{standby: standby, replica: replica, name: fmt.Sprintf("127.0.0.1:%d", standby.Port())}
	// A third of it for the standby: room for a loaded machine, so a read
	// falls back to the primary only for a standby really down or frozen.
	cfg := testConfig()
	cfg.DBTimeout = 6 * time.Second
	r.direct = newTestServer(t, primaryPool, cfg)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	r.standbys = store.NewStandbys([]*pgxpool.Pool{openPool(t, standbyURL)},
		store.StandbyOptions{MaxLag: maxLag, CheckEvery: 100 * time.Millisecond, Logger: logger})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.standbys.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	r.routed = newTestServerOn(t, store.NewStore(primaryPool).WithStandbys(r.standbys), primaryPool, logs, cfg)
	r.waitInUse(t, true)
	return r
}

func openPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inUse reads coco_db_standby_in_use as a scrape of /metrics would.
func (r *replicated) inUse(t *testing.T) bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.standbys.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "coco_db_standby_in_use" {
			return f.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	t.Fatal("no coco_db_standby_in_use metric")
	return false
}

func (r *replicated) waitInUse(t *testing.T, want bool) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("the standby's in_use to be %t", want), func() bool { return r.inUse(t) == want })
}

// caughtUp waits until the standby has replayed everything the primary has
// written so far.
func (r *replicated) caughtUp(t *testing.T) {
	t.Helper()
	var lsn string
	if err := r.direct.pool.QueryRow(t.Context(), `select pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the standby to replay "+lsn, func() bool {
		var done bool
		err := r.replica.QueryRow(t.Context(), `select pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done)
		return err == nil && done
	})
}

// readFrom is the read_from of the routed server's latest request line.
func (r *replicated) readFrom(t *testing.T) string {
	t.Helper()
	lines := r.routed.logs.lines(t)
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["msg"] == "request" {
			from, _ := lines[i]["read_from"].(string)
			return from
		}
	}
	t.Fatal("no request line in the log")
	return ""
}

// A standby answers the reads, with the primary's bytes and ETags, and its
// 304s.
func TestStandbyAnswersReadsWithThePrimarysBytes(t *testing.T) {
	t.Parallel()
	r := setupReplicated(t, 5*time.Second)
	started := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	users := []string{"alice", "bob"}
	for i, user := range users {
		for j := range 3 {
			body := summaryJSON(fmt.Sprintf("s-%s-%d", user, j), user, started.Add(time.Duration(j*10+i)*time.Minute), 300+60*j, 0.5+0.1*float64(j))
			expectStatus(t, r.routed.ingest(t, body), http.StatusOK)
		}
	}
	r.caughtUp(t)
	for _, user := range append(users, "never-seen") {
		fromStandby := r.routed.dashboard(t, user, adminToken)
		expectStatus(t, fromStandby, http.StatusOK)
		if from := r.readFrom(t); from != r.name {
			t.Errorf("%s's dashboard was read from %q, want the standby %s", user, from, r.name)
		}
		fromPrimary := r.direct.dashboard(t, user, adminToken)
		if fromStandby.Body.String() != fromPrimary.Body.String() {
			t.Errorf("%s's dashboard from the standby:\n%s\nfrom the primary:\n%s", user, fromStandby.Body, fromPrimary.Body)
		}
		for _, h := range []string{"ETag", "Coco-Window-End", "Coco-Time-Zone"} {
			if a, b := fromStandby.Header().Get(h), fromPrimary.Header().Get(h); a != b {
				t.Errorf("%s's %s from the standby %q, from the primary %q", user, h, a, b)
			}
		}
		notModified := r.routed.dashboard(t, user, adminToken, "If-None-Match", fromPrimary.Header().Get("ETag"))
		expectStatus(t, notModified, http.StatusNotModified)
		if from := r.readFrom(t); from != r.name {
			t.Errorf("%s's 304 was read from %q, want the standby", user, from)
		}
	}
}

// On a new day the standby's stored window is stale: the read computes it
// without storing, and serves what the primary then stores, to the byte.
func TestStaleWindowOnTheStandbyIsComputedNotStored(t *testing.T) {
	t.Parallel()
	r := setupReplicated(t, 5*time.Second)
	expectStatus(t, r.routed.ingest(t, summaryJSON("s-1", "alice", time.Now().Add(-time.Hour).Truncate(time.Second), 600, 0.8)), http.StatusOK)
	r.caughtUp(t)
	tomorrow := time.Now().Add(24 * time.Hour)
	r.routed.pinClock(tomorrow)
	r.direct.pinClock(tomorrow)
	stored := func() string {
		var end string
		if err := r.direct.pool.QueryRow(t.Context(), `select window_end::text from dashboard_rollups`).Scan(&end); err != nil {
			t.Fatal(err)
		}
		return end
	}
	before := stored()

	fromStandby := r.routed.dashboard(t, "alice", adminToken)
	expectStatus(t, fromStandby, http.StatusOK)
	if from := r.readFrom(t); from != r.name {
		t.Fatalf("read from %q, want the standby", from)
	}
	if got := fromStandby.Header().Get("Coco-Window-End"); got != tomorrow.UTC().Format(time.DateOnly) {
		t.Errorf("the standby served the window ending %s, want tomorrow's", got)
	}
	if after := stored(); after != before {
		t.Errorf("the primary's rollup moved from %s to %s on a standby's read", before, after)
	}

	fromPrimary := r.direct.dashboard(t, "alice", adminToken)
	if fromPrimary.Body.String() != fromStandby.Body.String() || fromPrimary.Header().Get("ETag") != fromStandby.Header().Get("ETag") {
		t.Errorf("the standby computed %s %s, the primary stored %s %s", fromStandby.Header().Get("ETag"), fromStandby.Body,
			fromPrimary.Header().Get("ETag"), fromPrimary.Body)
	}
	if after := stored(); after == before {
		t.Errorf("the primary's read did not store tomorrow's window")
	}
	// Once the standby has replayed the stored window, it is the same one.
	r.caughtUp(t)
	expectStatus(t, r.routed.dashboard(t, "alice", adminToken, "If-None-Match", fromStandby.Header().Get("ETag")), http.StatusNotModified)
}

// A standby paused past READ_MAX_LAG is skipped, and used again once it has
// caught up.
func TestLaggingStandbyIsSkipped(t *testing.T) {
	t.Parallel()
	r := setupReplicated(t, time.Second)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	expectStatus(t, r.routed.ingest(t, summaryJSON("s-0", "alice", started, 60, 0.5)), http.StatusOK)
	if err := r.standby.PauseReplay(t.Context()); err != nil {
		t.Fatal(err)
	}
	// New WAL that the standby receives and does not replay.
	expectStatus(t, r.routed.ingest(t, summaryJSON("s-1", "alice", started.Add(time.Minute), 60, 0.5)), http.StatusOK)
	reads := func(want string) {
		waitFor(t, 10*time.Second, "reads from "+want, func() bool {
			expectStatus(t, r.routed.dashboard(t, "alice", adminToken), http.StatusOK)
			return r.readFrom(t) == want
		})
	}
	reads("primary")
	if r.inUse(t) {
		t.Errorf("the paused standby is still in use")
	}
	if err := r.standby.ResumeReplay(t.Context()); err != nil {
		t.Fatal(err)
	}
	reads(r.name)
}

// While the standby is stopped, then frozen, every read succeeds from the
// primary; once it is back, it answers again.
func TestStoppedOrFrozenStandbyCostsNoRead(t *testing.T) {
	t.Parallel()
	r := setupReplicated(t, 5*time.Second)
	expectStatus(t, r.routed.ingest(t, summaryJSON("s-0", "alice", time.Now().Add(-time.Hour).Truncate(time.Second), 60, 0.5)), http.StatusOK)
	r.caughtUp(t)

	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := r.routed.dashboard(t, "alice", adminToken)
				total.Add(1)
				if rec.Code != http.StatusOK {
					failed.Add(1)
					t.Errorf("a read while the standby was down or frozen: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
	if err := r.standby.Stop(); err != nil {
		t.Fatal(err)
	}
	r.waitInUse(t, false)
	time.Sleep(500 * time.Millisecond)
	if err := r.standby.Restart(); err != nil {
		t.Fatal(err)
	}
	r.waitInUse(t, true)
	if err := r.standby.Freeze(); err != nil {
		t.Fatal(err)
	}
	r.waitInUse(t, false)
	time.Sleep(time.Second)
	if err := r.standby.Thaw(); err != nil {
		t.Fatal(err)
	}
	r.waitInUse(t, true)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	from := map[string]int{}
	for _, line := range r.routed.logs.lines(t) {
		if line["msg"] == "request" {
			s, _ := line["read_from"].(string)
			from[s]++
		}
	}
	t.Logf("%d reads, %d failed; answered by %v", total.Load(), failed.Load(), from)
	if from["primary"] == 0 || from[r.name] == 0 {
		t.Errorf("reads answered by %v, want both the primary (while the standby was away) and the standby", from)
	}
}

// Writes go to the primary whatever the reads do: with a standby in use,
// every writing route succeeds (on a standby each would fail).
func TestWritesNeverGoToTheStandby(t *testing.T) {
	t.Parallel()
	r := setupReplicated(t, 5*time.Second)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	expectStatus(t, r.routed.ingest(t, summaryJSON("s-1", "alice", started, 60, 0.5)), http.StatusOK)
	expectStatus(t, r.routed.postBatch(t, batchJSON(summaryJSON("s-2", "bob", started, 60, 0.5))), http.StatusOK)
	expectStatus(t, r.routed.putSettings(t, "alice", `{"time_zone":"Europe/Paris"}`), http.StatusOK)
	expectStatus(t, r.routed.export(t, "bob"), http.StatusOK)
	expectStatus(t, r.routed.erase(t, "bob"), http.StatusOK)
	if n := r.direct.count(t, `select count(*) from sessions`); n != 1 {
		t.Errorf("%d sessions on the primary, want alice's one", n)
	}
}
