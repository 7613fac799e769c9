package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/sql/migrations"
	"coco/sql/sqltest"
)

// A release that reinstalls the whole engine (every function replaced in
// place, the triggers recreated) and alters sessions, deployed while
// devices ingest, dashboards poll and an analyst's long transaction holds
// sessions: the migration waits in short lock timeouts, requests keep being
// answered meanwhile (503 at worst, never 500 or a stale-catalog XX000),
// and the rollups are right afterwards.
func TestEngineReinstallUnderLoad(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 16)
	ctx := t.Context()

	// The reinstall, taken from the engine's own definitions. It takes its
	// strongest lock on sessions first, as a migration must: taking a
	// weaker one first (creating a trigger) and then upgrading it
	// deadlocks with every ingest that read sessions before writing.
	var reinstall string
	if err := ts.pool.QueryRow(ctx, `
		select E'alter table sessions add column later_release_note text;\n'
		    || string_agg(pg_get_functiondef(p.oid), E';\n') || E';\n'
		    || (select string_agg(replace(pg_get_triggerdef(tg.oid), 'CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER'), E';\n')
		          from pg_trigger tg where tg.tgrelid = 'sessions'::regclass and not tg.tgisinternal) || E';\n'
		from pg_proc p where p.pronamespace = 'coco'::regnamespace and p.prokind = 'f'`).Scan(&reinstall); err != nil {
		t.Fatal(err)
	}

	// An analyst's report holds sessions for three seconds.
	analyst, err := pgx.Connect(ctx, ts.pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := analyst.Exec(ctx, `begin; select count(*) from sessions`); err != nil {
		t.Fatal(err)
	}
	committed := make(chan struct{})
	time.AfterFunc(3*time.Second, func() {
		_, _ = analyst.Exec(context.Background(), `commit`)
		close(committed)
	})
	defer func() {
		<-committed
		analyst.Close(context.Background())
	}()

	var (
		stop     atomic.Bool
		seq      atomic.Int64
		statuses sync.Map // status -> *atomic.Int64
		wg       sync.WaitGroup
	)
	count := func(status int) {
		n, _ := statuses.LoadOrStore(status, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	for w := range 8 {
		wg.Go(func() {
			for !stop.Load() {
				user := fmt.Sprintf("u%d", seq.Add(1)%10)
				if w%2 == 0 {
					count(ts.ingest(t, summaryJSON(fmt.Sprintf("load-%d", seq.Add(1)), user, time.Now().Add(-time.Hour), 60, 0.5)).Code)
				} else {
					count(ts.dashboard(t, user, adminToken).Code)
				}
			}
		})
	}

	start := time.Now()
	res, err := migrations.Migrate(ctx, ts.pool.Config().ConnConfig, migrations.Options{
		FS:          sqltest.WithMigration(t, reinstall),
		LockTimeout: 200 * time.Millisecond,
		Wait:        20 * time.Second,
	})
	waited := time.Since(start)
	servedDuringWait := int64(0)
	if n, ok := statuses.Load(http.StatusOK); ok {
		servedDuringWait = n.(*atomic.Int64).Load()
	}
	time.Sleep(200 * time.Millisecond) // some load on the new engine
	stop.Store(true)
	wg.Wait()

	if err != nil || res.To != migrations.ExpectedVersion()+1 {
		t.Fatalf("reinstall = %+v, %v; want it to go through once the analyst commits", res, err)
	}
	if waited < 2*time.Second {
		t.Errorf("reinstall took %s; want it to have waited for the analyst's transaction", waited)
	}
	if servedDuringWait < 100 {
		t.Errorf("%d requests served (200) while the reinstall waited %s; want traffic to go on", servedDuringWait, waited)
	}
	statuses.Range(func(status, n any) bool {
		if s := status.(int); s != http.StatusOK && s != http.StatusServiceUnavailable {
			t.Errorf("%d answers of %d during the reinstall; want only 200 and 503", n.(*atomic.Int64).Load(), s)
		}
		return true
	})
	if strings.Contains(ts.logs.String(), "XX000") {
		t.Errorf("an internal error (XX000) was logged during the reinstall")
	}
	expectRollupsFresh(t, ts)
}
