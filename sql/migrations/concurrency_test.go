package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/sqltest"
)

// widePool is a second pool on the test's database with room for n
// connections at once.
func widePool(t *testing.T, pool *pgxpool.Pool, n int32) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config()
	cfg.MaxConns = n
	wide, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open a pool of %d connections: %v", n, err)
	}
	t.Cleanup(wide.Close)
	return wide
}

// A writes a session of U and keeps its transaction open; B's write of
// another session of U must wait for A's lock on U, and once both commit the
// rollup holds both sessions.
func TestConcurrentWritersOfOneUserSerialize(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	id := addUser(t, pool, "shared", sess{at: rfc3339(start.Add(time.Hour)), secs: 60, score: "0.5"})
	insert := func(sessionID string, after time.Duration, secs int) func(context.Context, pgx.Tx) error {
		return func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
				values ($1, $2::uuid, $3, $4, 0.5)`, sessionID, id, start.Add(after), secs)
			return err
		}
	}
	serializes(t, pool,
		writer{"A's insert", insert("a", 2*time.Hour, 120)},
		writer{"B's insert", insert("b", 3*time.Hour, 180)})

	if got := stored(t, pool, id); !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 0, 6}) {
		t.Errorf("stored daily_durations = %v, want both sessions and the first counted: [0 0 0 0 0 0 6]", got.Durations)
	}
	requireFresh(t, pool)
}

// Many transactions write sessions of the same users at once, through
// coco.ingest_session and through multi-row inserts across users in random
// order; afterwards every stored rollup equals a fresh one, with no deadlock.
func TestConcurrentWritersStress(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	wide := widePool(t, pool, 24)
	ctx := t.Context()
	start := todayStart(t, pool)

	const users, writersPerUser, txPerWriter = 20, 4, 6
	ids := make([]string, users)
	for u := range users {
		ids[u] = addUser(t, pool, fmt.Sprintf("stress-%02d", u))
	}

	write := func(rng *rand.Rand, u, w, n int) error {
		tx, err := wide.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		randomStart := func() time.Time {
			return start.AddDate(0, 0, -rng.IntN(7)).Add(time.Duration(rng.IntN(86400)) * time.Second)
		}
		if n%2 == 0 {
			var status string
			err = tx.QueryRow(ctx, `select coco.ingest_session($1, $2, $3, $4, $5::text::numeric)`,
				fmt.Sprintf("i-%d-%d-%d", u, w, n), fmt.Sprintf("stress-%02d", u), randomStart(),
				rng.IntN(7200), fmt.Sprintf("%.2f", rng.Float64()),
			).Scan(&status)
			if err == nil && status != "ok" {
				err = fmt.Errorf("ingest_session = %q, want ok", status)
			}
		} else {
			// This writer's user and two others, in random order.
			order := append([]int{u}, rng.Perm(users)[:2]...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			var sids, uids []string
			var ats []time.Time
			var secs []int32
			var scores []string
			for k, o := range order {
				sids = append(sids, fmt.Sprintf("m-%d-%d-%d-%d", u, w, n, k))
				uids = append(uids, ids[o])
				ats = append(ats, randomStart())
				secs = append(secs, int32(rng.IntN(7200)))
				scores = append(scores, fmt.Sprintf("%.3f", rng.Float64()))
			}
			_, err = tx.Exec(ctx, `
				insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
				select * from unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::int[], $5::text[]::numeric[])`,
				sids, uids, ats, secs, scores)
		}
		if err != nil {
			return err
		}
		// Hold the transaction open a little so writers overlap.
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		return tx.Commit(ctx)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	begin := make(chan struct{})
	for u := range users {
		for w := range writersPerUser {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(u), uint64(w)))
				<-begin
				for n := range txPerWriter {
					if err := write(rng, u, w, n); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("user %d writer %d tx %d: %w", u, w, n, err))
						mu.Unlock()
						return
					}
				}
			})
		}
	}
	began := time.Now()
	close(begin)
	wg.Wait()
	t.Logf("%d transactions in %s", users*writersPerUser*txPerWriter, time.Since(began).Round(time.Millisecond))

	for _, err := range errs {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
			t.Errorf("deadlock, want none: %v", err)
		} else {
			t.Errorf("write failed: %v", err)
		}
	}
	var sessions int
	if err := pool.QueryRow(ctx, `select count(*) from sessions`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	// Per writer: txPerWriter/2 single ingests and txPerWriter/2 inserts of three rows.
	if want := users * writersPerUser * (txPerWriter/2 + txPerWriter/2*3); sessions != want {
		t.Errorf("%d sessions stored, want %d", sessions, want)
	}
	if stale := notFresh(t, pool); len(stale) > 0 {
		t.Errorf("stored rollups of %d users (%v) differ from a fresh rollup_window; want none", len(stale), stale)
	}
}

// Fifty simultaneous ingests of one session_id for a user nobody has seen:
// exactly one stores it, the other 49 see a duplicate.
func TestConcurrentDuplicateIngests(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	const n = 50
	wide := widePool(t, pool, n)
	ctx := t.Context()
	start := todayStart(t, pool)

	var ready, done sync.WaitGroup
	begin := make(chan struct{})
	statuses := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			conn, err := wide.Acquire(ctx)
			ready.Done()
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Release()
			<-begin
			errs[i] = conn.QueryRow(ctx, `select coco.ingest_session('once', 'newcomer', $1, 150, 0.5)`, start).Scan(&statuses[i])
		})
	}
	ready.Wait() // every ingest holds its own connection before any starts
	close(begin)
	done.Wait()

	counts := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("ingest %d: %v", i, errs[i])
			continue
		}
		counts[statuses[i]]++
	}
	if counts["ok"] != 1 || counts["duplicate"] != n-1 {
		t.Errorf("statuses %v, want 1 ok and %d duplicate", counts, n-1)
	}
	var sessions, users int
	if err := pool.QueryRow(ctx,
		`select (select count(*) from sessions), (select count(*) from users)`).Scan(&sessions, &users); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || users != 1 {
		t.Errorf("%d sessions and %d users, want 1 and 1", sessions, users)
	}
	if got := stored(t, pool, userID(t, pool, "newcomer")); !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 0, 3}) {
		t.Errorf("stored daily_durations = %v, want the 150 s counted once: [0 0 0 0 0 0 3]", got.Durations)
	}
	requireFresh(t, pool)
}

// writer is one side of serializes: a name for messages and the statement
// it runs in its transaction.
type writer struct {
	name string
	run  func(ctx context.Context, tx pgx.Tx) error
}

// serializes runs a in one transaction, then b in another, and checks that
// b waits for a's transaction to end, on a lock it takes before computing
// any rollup (a b that computed first would wait at dashboard_rollups,
// holding a rollup made without a's change). It then commits a, then b.
func serializes(t *testing.T, pool *pgxpool.Pool, a, b writer) {
	t.Helper()
	ctx := t.Context()
	begin := func() (pgx.Tx, uint32) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(context.Background()) })
		var pid uint32
		if err := tx.QueryRow(ctx, `select pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return tx, pid
	}
	txA, pidA := begin()
	if err := a.run(ctx, txA); err != nil {
		t.Fatalf("%s: %v", a.name, err)
	}
	txB, pidB := begin()
	bDone := make(chan error, 1)
	go func() { bDone <- b.run(ctx, txB) }()

	deadline := time.Now().Add(10 * time.Second)
	for waiting := false; !waiting; {
		select {
		case err := <-bDone:
			t.Fatalf("%s returned (err %v) while %s was open; want it blocked", b.name, err, a.name)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited on a lock while %s was open", b.name, a.name)
		}
		err := pool.QueryRow(ctx, `
			select coalesce((select wait_event_type = 'Lock' from pg_stat_activity where pid = $1), false)
			       and $2 = any (pg_blocking_pids($1))`, pidB, pidA).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var atRollups bool
	if err := pool.QueryRow(ctx, `
		select exists (select from pg_locks where pid = $1 and relation = 'dashboard_rollups'::regclass)`, pidB,
	).Scan(&atRollups); err != nil {
		t.Fatal(err)
	}
	if atRollups {
		t.Errorf("%s waits for %s while writing dashboard_rollups; want it to wait for the user's lock before computing its rollup", b.name, a.name)
	}

	if err := txA.Commit(ctx); err != nil {
		t.Fatalf("%s: commit: %v", a.name, err)
	}
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("%s after %s committed: %v", b.name, a.name, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still blocked 10 s after %s committed", b.name, a.name)
	}
	if err := txB.Commit(ctx); err != nil {
		t.Fatalf("%s: commit: %v", b.name, err)
	}
}
