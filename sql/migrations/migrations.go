// Package migrations is coco's schema: the numbered tern migrations beside
// this file, embedded in the binary, and Migrate, which applies them without
// stalling a database that is serving traffic.
//
// A migration that has shipped never changes (shipped.sha256 records each
// one's hash). Later behaviour is a later file: tables grow with
// `alter table`, and the engine's functions are replaced in place with
// `create or replace`, so a fresh database replays exactly what an upgraded
// one ran, and a running query never loses the function it is executing.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
)

// Files holds the NNN_name.sql migrations, for the binary; the tern CLI
// reads the same folder (tern.conf).
//
//go:embed *.sql
var Files embed.FS

// VersionTable is where tern records the schema version, for the tern CLI
// and the binary alike.
const VersionTable = "public.schema_version"

// ExpectedVersion is the schema version this binary's migrations end at.
func ExpectedVersion() int32 { return expectedVersion }

// expectedVersion is counted once: the migrations are embedded, so a
// malformed set is a broken build, not a runtime condition.
var expectedVersion = func() int32 {
	names, err := migrate.FindMigrations(Files)
	if err != nil {
		panic(fmt.Sprintf("embedded migrations: %v", err))
	}
	return int32(len(names))
}()

// Hash identifies the content of every migration in fsys, so that a test
// database template is rebuilt when any of them changes.
func Hash(fsys fs.FS) (string, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(body))
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Options tune Migrate; the zero value is what `coco migrate` uses.
type Options struct {
	// FS holds the migrations; nil means Files. Tests add throwaway ones.
	FS fs.FS
	// LockTimeout bounds each wait for a lock. While a migration waits for
	// a table that a long query holds, every query behind it waits too; a
	// short timeout keeps that stall well under the API's request deadline.
	// Default 500ms.
	LockTimeout time.Duration
	// Wait is how long to keep retrying after lock timeouts before giving
	// up. Default one minute.
	Wait time.Duration
	// Retrying, when set, hears of each retry: the attempt that failed and
	// what blocked it.
	Retrying func(attempt int, blocked string)
}

// Result says what a Migrate call did. From == To when there was nothing
// left to do, for instance because another migrate ran at the same time.
type Result struct {
	From, To int32
}

// ErrNewerSchema means the database was migrated by a newer release.
var ErrNewerSchema = errors.New("the database schema is newer than this binary")

// Migrate brings the database at cfg to the newest migration, on a
// connection of its own. Each migration runs in a transaction; one that
// cannot get a lock within LockTimeout, or that a deadlock with a request
// rolls back, is retried with backoff for up to Wait. A migration that
// alters a busy table takes its strongest lock on it first: upgrading a
// weaker one later deadlocks with requests that read before they write. tern's advisory lock serializes concurrent
// callers: the first migrates, the others then find nothing left to do.
func Migrate(ctx context.Context, cfg *pgx.ConnConfig, o Options) (Result, error) {
	if o.FS == nil {
		o.FS = Files
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 500 * time.Millisecond
	}
	if o.Wait <= 0 {
		o.Wait = time.Minute
	}
	cfg = cfg.Copy()
	// A startup parameter, not a SET: tern runs RESET ALL after each
	// migration, which returns to this value rather than to "wait forever".
	cfg.RuntimeParams["lock_timeout"] = fmt.Sprint(o.LockTimeout.Milliseconds())
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Result{}, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	watch := newBlockerWatch(ctx, cfg.Copy(), conn.PgConn().PID())
	defer watch.stop()

	deadline := time.Now().Add(o.Wait)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := migrateOnce(ctx, conn, o.FS)
		if !isLockConflict(err) {
			return res, err
		}
		blocked := watch.last()
		if time.Now().Add(backoff).After(deadline) {
			return res, fmt.Errorf("gave up after %s of lock timeouts: %s; end that session, or run migrate again when it is done", o.Wait, blocked)
		}
		if o.Retrying != nil {
			o.Retrying(attempt, blocked)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// migrateOnce runs tern once and reports the versions before and after.
func migrateOnce(ctx context.Context, conn *pgx.Conn, fsys fs.FS) (Result, error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return Result{}, fmt.Errorf("prepare migrations: %w", err)
	}
	if err := m.LoadMigrations(fsys); err != nil {
		return Result{}, fmt.Errorf("load migrations: %w", err)
	}
	// Versions read before tern's lock could be stale by the time it holds
	// it, so the applied range is taken from what tern actually ran.
	var applied []int32
	m.OnStart = func(sequence int32, _, _, _ string) { applied = append(applied, sequence) }
	err = m.Migrate(ctx)
	var res Result
	if len(applied) > 0 {
		res.From = applied[0] - 1
		res.To = applied[len(applied)-1]
		if err != nil {
			res.To-- // the last one started failed and was rolled back
		}
	} else {
		res.From, _ = m.GetCurrentVersion(ctx)
		res.To = res.From
	}
	var badVersion migrate.BadVersionError
	if errors.As(err, &badVersion) && res.From > int32(len(m.Migrations)) {
		return res, fmt.Errorf("%w: it is at version %d, this binary knows %d; deploy the newer binary",
			ErrNewerSchema, res.From, len(m.Migrations))
	}
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	return res, nil
}

// isLockConflict reports whether a migration was rolled back for a lock it
// could not get: a lock timeout, or a deadlock it was chosen to break.
func isLockConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01")
}

// blockerWatch looks, from a second connection, at what the migrating
// backend waits for, so that a migration that gives up can name it: the
// relation, and the pid, age and state of the sessions in its way. Never
// their query text, which may hold personal data.
type blockerWatch struct {
	done chan struct{}
	mu   sync.Mutex
	seen string
}

func newBlockerWatch(ctx context.Context, cfg *pgx.ConnConfig, pid uint32) *blockerWatch {
	w := &blockerWatch{done: make(chan struct{}), seen: "nothing was seen holding the lock"}
	go func() {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if s := describeBlockers(ctx, conn, pid); s != "" {
				w.mu.Lock()
				w.seen = s
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// last is the latest wait the watch saw.
func (w *blockerWatch) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

func (w *blockerWatch) stop() { close(w.done) }

// describeBlockers says what the backend pid waits for, or "" when it is
// not waiting.
func describeBlockers(ctx context.Context, conn *pgx.Conn, pid uint32) string {
	rows, err := conn.Query(ctx, `
		select b.pid, coalesce(b.application_name, ''), coalesce(b.state, ''),
		       coalesce(extract(epoch from now() - b.xact_start), 0)::float8,
		       coalesce((select l.relation::regclass::text from pg_locks l
		                  where l.pid = $1 and not l.granted and l.relation is not null limit 1), '')
		  from pg_stat_activity b
		 where b.pid = any (pg_blocking_pids($1))
		 order by b.pid`, int32(pid))
	if err != nil {
		return ""
	}
	var relation string
	var holders []string
	for rows.Next() {
		var bpid int32
		var app, state string
		var age float64
		if err := rows.Scan(&bpid, &app, &state, &age, &relation); err != nil {
			return ""
		}
		who := fmt.Sprintf("pid %d", bpid)
		if app != "" {
			who += fmt.Sprintf(" (%s)", app)
		}
		holders = append(holders, fmt.Sprintf("%s, %s, in a transaction open for %s",
			who, state, (time.Duration(age)*time.Second).Round(time.Second)))
	}
	if rows.Err() != nil || len(holders) == 0 {
		return ""
	}
	slices.Sort(holders)
	what := "a lock"
	if relation != "" {
		what = "a lock on " + relation
	}
	return "waiting for " + what + " held by " + strings.Join(holders, "; ")
}
