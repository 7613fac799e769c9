package migrations_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/sql/migrations"
	"coco/sql/sqltest"
	"coco/sql/store"
)

func TestExpectedVersionMatchesMigratedDatabase(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	want := migrations.ExpectedVersion()
	files, err := fs.Glob(migrations.Files, "[0-9][0-9][0-9]_*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if int(want) != len(files) {
		t.Errorf("ExpectedVersion() = %d, want one per numbered migration file (%d: %v)", want, len(files), files)
	}
	if got, err := store.NewStore(pool).SchemaVersion(t.Context()); err != nil || got != want {
		t.Errorf("Store.SchemaVersion() of a migrated database = %d, %v; want %d", got, err, want)
	}
}

// A shipped migration has run on databases we cannot reach: changing it
// would leave them different from fresh ones. shipped.sha256 (in
// sha256sum's format) records each one; only a migration that never left
// this repository may be edited, and its line updated with it.
func TestShippedMigrationsNeverChange(t *testing.T) {
	t.Parallel()
	sums, err := os.ReadFile("shipped.sha256")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("shipped.sha256: line %q is not \"<sha256>  <file>\"", sc.Text())
		}
		recorded[name] = sum
	}
	names, err := fs.Glob(migrations.Files, "[0-9][0-9][0-9]_*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		body, err := fs.ReadFile(migrations.Files, name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		got := hex.EncodeToString(sum[:])
		switch want, ok := recorded[name]; {
		case !ok:
			t.Errorf("%s is not in shipped.sha256: add the line\n%s  %s", name, got, name)
		case got != want:
			t.Errorf("%s changed after it shipped (sha256 %s, recorded %s): put the change in a new migration", name, got, want)
		}
		delete(recorded, name)
	}
	for name := range recorded {
		t.Errorf("shipped.sha256 lists %s, which is gone: a shipped migration is never removed", name)
	}
}

func TestHashChangesWithAnyMigration(t *testing.T) {
	t.Parallel()
	base := fstest.MapFS{
		"001_a.sql": {Data: []byte("create table a ();")},
		"002_b.sql": {Data: []byte("create table b ();")},
	}
	baseHash, err := migrations.Hash(base)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]fstest.MapFS{
		"a migration's content": {
			"001_a.sql": {Data: []byte("create table a (x int);")},
			"002_b.sql": base["002_b.sql"],
		},
		"a migration added": {
			"001_a.sql": base["001_a.sql"], "002_b.sql": base["002_b.sql"],
			"003_c.sql": {Data: []byte("select 1;")},
		},
		"bytes moved across a file boundary": {
			"001_a.sql": {Data: []byte("create table a ();c")},
			"002_b.sql": {Data: []byte("reate table b ();")},
		},
	}
	for name, fsys := range cases {
		if got, err := migrations.Hash(fsys); err != nil || got == baseHash {
			t.Errorf("Hash after %s = %s, %v; want a hash other than %s", name, got, err, baseHash)
		}
	}
}

func connConfig(t *testing.T, url string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The first release installed its engine from template files that rendered
// whatever they said on the day a database migrated, so a later migration
// adding a column that an engine function used broke every fresh database
// at migration 2. Migrations are plain files now; this is that scenario.
func TestLaterMigrationMayUseAColumnAddedBeforeIt(t *testing.T) {
	t.Parallel()
	url := sqltest.EmptyURL(t, "")
	fsys := sqltest.WithMigration(t, `
		alter table sessions add column device text;
		create or replace function coco.devices(p_user_id uuid) returns text[]
		language sql stable
		return array(select distinct s.device from sessions s where s.user_id = p_user_id and s.device is not null);`)
	res, err := migrations.Migrate(t.Context(), connConfig(t, url), migrations.Options{FS: fsys})
	if want := migrations.ExpectedVersion() + 1; err != nil || res != (migrations.Result{From: 0, To: want}) {
		t.Fatalf("Migrate a fresh database = %+v, %v; want from 0 to %d", res, err, want)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `
		insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score, device)
		values ('s1', coco.ensure_user('ines'), now(), 60, 0.5, 'tablet')`); err != nil {
		t.Fatal(err)
	}
	var devices []string
	err = conn.QueryRow(t.Context(), `select coco.devices(coco.ensure_user('ines'))`).Scan(&devices)
	if err != nil || len(devices) != 1 || devices[0] != "tablet" {
		t.Errorf("coco.devices after an insert = %v, %v; want [tablet]", devices, err)
	}
}

func TestConcurrentMigrationsOneDoesTheWork(t *testing.T) {
	t.Parallel()
	cfg := connConfig(t, sqltest.EmptyURL(t, ""))
	want := migrations.ExpectedVersion()
	results := make([]migrations.Result, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = migrations.Migrate(t.Context(), cfg, migrations.Options{}) })
	}
	wg.Wait()
	worked := 0
	for i, res := range results {
		switch {
		case errs[i] != nil:
			t.Errorf("migrate %d: %v", i, errs[i])
		case res == migrations.Result{From: 0, To: want}:
			worked++
		case res != migrations.Result{From: want, To: want}:
			t.Errorf("migrate %d = %+v; want from 0 to %d, or nothing to do at %d", i, res, want, want)
		}
	}
	if worked != 1 {
		t.Errorf("%d of 3 concurrent migrations report migrating from 0 (%+v); want exactly one", worked, results)
	}
}

// holdSessions opens a transaction that reads sessions, as an analyst's
// long report would, and keeps it open until release is called. It returns
// the holder's backend pid.
func holdSessions(t *testing.T, url string) (pid uint32, release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `begin; select count(*) from sessions /* secret report text */`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_, _ = conn.Exec(context.Background(), `commit`)
			_ = conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return conn.PgConn().PID(), release
}

func TestMigrationBlockedByALongTransactionGivesUpAndNamesIt(t *testing.T) {
	t.Parallel()
	url := sqltest.EmptyURL(t, "")
	cfg := connConfig(t, url)
	if _, err := migrations.Migrate(t.Context(), cfg, migrations.Options{}); err != nil {
		t.Fatal(err)
	}
	pid, _ := holdSessions(t, url)

	var retries int
	start := time.Now()
	res, err := migrations.Migrate(t.Context(), cfg, migrations.Options{
		FS:          sqltest.WithMigration(t, `alter table sessions add column note text;`),
		LockTimeout: 100 * time.Millisecond,
		Wait:        1500 * time.Millisecond,
		Retrying:    func(int, string) { retries++ },
	})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("Migrate while a transaction reads sessions = %+v, nil; want it to give up", res)
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("pid %d", pid), "sessions", "idle in transaction"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "secret report text") || strings.Contains(msg, "count(") {
		t.Errorf("error %q quotes the blocking query; it must only name it", msg)
	}
	if retries < 2 || elapsed > 5*time.Second {
		t.Errorf("gave up after %d retries and %s; want several retries within about the 1.5s wait", retries, elapsed)
	}
	if res.To != migrations.ExpectedVersion() {
		t.Errorf("version after giving up = %d, want still %d", res.To, migrations.ExpectedVersion())
	}
}

func TestMigrationWaitsOutABriefTransaction(t *testing.T) {
	t.Parallel()
	url := sqltest.EmptyURL(t, "")
	cfg := connConfig(t, url)
	if _, err := migrations.Migrate(t.Context(), cfg, migrations.Options{}); err != nil {
		t.Fatal(err)
	}
	_, release := holdSessions(t, url)

	// The transaction ends once the migration has timed out on it once.
	var retries int
	res, err := migrations.Migrate(t.Context(), cfg, migrations.Options{
		FS:          sqltest.WithMigration(t, `alter table sessions add column note text;`),
		LockTimeout: 100 * time.Millisecond,
		Wait:        30 * time.Second,
		Retrying: func(int, string) {
			retries++
			release()
		},
	})
	want := migrations.Result{From: migrations.ExpectedVersion(), To: migrations.ExpectedVersion() + 1}
	if err != nil || res != want {
		t.Fatalf("Migrate = %+v, %v; want %+v once the transaction ends", res, err, want)
	}
	if retries == 0 {
		t.Errorf("Migrate succeeded without a retry; want it to have timed out while the transaction held sessions")
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	url := sqltest.EmptyURL(t, "")
	if _, err := migrations.Migrate(t.Context(), connConfig(t, url),
		migrations.Options{FS: sqltest.WithMigration(t, `select 1;`)}); err != nil {
		t.Fatal(err)
	}
	_, err := migrations.Migrate(t.Context(), connConfig(t, url), migrations.Options{})
	if !errors.Is(err, migrations.ErrNewerSchema) {
		t.Errorf("Migrate a database one version ahead = %v; want ErrNewerSchema", err)
	}
}
