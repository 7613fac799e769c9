// Package store is the Go that calls coco's SQL engine (the functions the
// migrations in coco/sql/migrations install), and the one place where the
// driver's errors become coco's: ErrUnavailable, ConflictError, or an
// internal error.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/migrations"
)

// Store calls coco's SQL functions. It computes nothing itself: every number
// it returns comes from the functions in migrations/engine.
type Store struct {
	pool     *pgxpool.Pool
	standbys *Standbys // nil: every read on the primary
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// WithStandbys returns a Store whose dashboard reads go to standbys while
// any is in use (see Standbys); everything else stays on the primary.
func (st *Store) WithStandbys(standbys *Standbys) *Store {
	c := *st
	c.standbys = standbys
	return &c
}

// Session is one use-session summary as the device posts it.
type Session struct {
	SessionID       string
	UserExternalID  string
	StartedAt       time.Time
	DurationSeconds int
	SentimentScore  float64
	// TimeZone is the zone the device was in when the session started, ""
	// when it did not say.
	TimeZone string
}

// IngestStatus is what storing a session did.
type IngestStatus string

const (
	Stored    IngestStatus = "ok"
	Duplicate IngestStatus = "duplicate"
	// The statuses below are batch items' only; a single ingest returns
	// them as errors.
	Conflict IngestStatus = "conflict"
	Invalid  IngestStatus = "invalid"
	Gone     IngestStatus = "gone"
)

// Ingest stores s once: Stored the first time, Duplicate when the same
// session is already stored, a *ConflictError when its session_id is stored
// with other values, or an *InvalidError for a time zone PostgreSQL does not
// know. A zone that differs from the one in force when the session started
// is recorded in the user's settings history.
func (st *Store) Ingest(ctx context.Context, s Session) (IngestStatus, error) {
	var status IngestStatus
	err := st.retry(ctx, func() error {
		if s.TimeZone == "" {
			return st.pool.QueryRow(ctx, `select coco.ingest_session($1, $2, $3, $4, $5)`,
				s.SessionID, s.UserExternalID, s.StartedAt, s.DurationSeconds, s.SentimentScore,
			).Scan(&status)
		}
		return st.pool.QueryRow(ctx, `select coco.ingest_session($1, $2, $3, $4, $5, $6)`,
			s.SessionID, s.UserExternalID, s.StartedAt, s.DurationSeconds, s.SentimentScore, s.TimeZone,
		).Scan(&status)
	})
	return status, err
}

// BatchOutcome is what storing one item of a batch did.
type BatchOutcome struct {
	Status IngestStatus
	// Detail names the fields that differ (Conflict) or the invalid field
	// (Invalid: "time_zone").
	Detail string
}

// IngestBatch stores sessions in one transaction (coco.ingest_sessions):
// all of them or, on an error, none. Each user's rollup is recomputed once.
// It returns one outcome per session, in order.
func (st *Store) IngestBatch(ctx context.Context, sessions []Session) ([]BatchOutcome, error) {
	if len(sessions) == 0 {
		return nil, nil
	}
	n := len(sessions)
	ids, users, zones := make([]string, n), make([]string, n), make([]*string, n)
	started, durations, scores := make([]time.Time, n), make([]int32, n), make([]float64, n)
	for i, s := range sessions {
		ids[i], users[i], zones[i] = s.SessionID, s.UserExternalID, nullIfEmpty(s.TimeZone)
		started[i], durations[i], scores[i] = s.StartedAt, int32(s.DurationSeconds), s.SentimentScore
	}
	out := make([]BatchOutcome, 0, n)
	err := st.retry(ctx, func() error {
		out = out[:0]
		rows, err := st.pool.Query(ctx, `select status, coalesce(detail, '') from coco.ingest_sessions($1, $2, $3, $4, $5, $6)`,
			ids, users, started, durations, scores, zones)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o BatchOutcome
			if err := rows.Scan(&o.Status, &o.Detail); err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err == nil && len(out) != n {
		err = fmt.Errorf("coco.ingest_sessions returned %d outcomes for %d sessions", len(out), n)
	}
	return out, err
}

// Snapshot is one user's seven-day rollup, oldest day first.
type Snapshot struct {
	// WindowEnd is the user's local date of the last day, in TimeZone.
	WindowEnd          time.Time
	TimeZone           string
	StreakDays         int
	DailyActivity      []bool
	DailyDurations     []int
	DailySentiment     []*float64 // nil on days without sessions
	LastSessionAt      *time.Time
	AvgDurationMinutes int
	CurrentTone        string
	UpdatedAt          time.Time
}

// snapshotColumns are the columns of coco.fresh_snapshot and
// coco.dashboard_at, in Snapshot's order. The sentiments are numeric(4,2);
// as float8 they print as 0.68, never 0.6800000001.
const snapshotColumns = `window_end, time_zone, streak_days, daily_activity, daily_durations,
	daily_sentiment::float8[], last_session_at, avg_duration_minutes, current_tone, updated_at`

func (s *Snapshot) fields() []any {
	return []any{&s.WindowEnd, &s.TimeZone, &s.StreakDays, &s.DailyActivity, &s.DailyDurations,
		&s.DailySentiment, &s.LastSessionAt, &s.AvgDurationMinutes, &s.CurrentTone, &s.UpdatedAt}
}

// Dashboard returns the snapshot of the user with externalID at the instant
// now, for the user's own day: the stored rollup when it is current (one
// inlined query), otherwise coco.dashboard_at's, which recomputes a known
// user's window or gives an unknown user the empty state, never creating a
// user.
func (st *Store) Dashboard(ctx context.Context, externalID string, now time.Time) (Snapshot, error) {
	var s Snapshot
	err := st.read(ctx, func(ctx context.Context, q querier) error {
		err := q.QueryRow(ctx, `select `+snapshotColumns+` from coco.fresh_snapshot($1, $2)`,
			externalID, now).Scan(s.fields()...)
		if errors.Is(err, pgx.ErrNoRows) {
			err = q.QueryRow(ctx, `select `+snapshotColumns+` from coco.dashboard_at($1, $2)`,
				externalID, now).Scan(s.fields()...)
		}
		return err
	})
	return s, err
}

// Version names a stored snapshot: the user's window, its zone and when it
// last changed.
type Version struct {
	WindowEnd time.Time
	TimeZone  string
	UpdatedAt time.Time
}

// DashboardVersion returns the Version of the snapshot Dashboard would
// return for externalID at now, if that snapshot is already stored; ok is
// false when Dashboard has work to do (an unknown user or a window that is
// not current). It only reads, so answering "not modified" costs one
// indexed lookup.
func (st *Store) DashboardVersion(ctx context.Context, externalID string, now time.Time) (v Version, ok bool, err error) {
	err = st.read(ctx, func(ctx context.Context, q querier) error {
		err := q.QueryRow(ctx,
			`select window_end, time_zone, updated_at from coco.fresh_snapshot($1, $2)`, externalID, now,
		).Scan(&v.WindowEnd, &v.TimeZone, &v.UpdatedAt)
		ok = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return v, ok, err
}

// Settings are a user's time zone and day start: those in force, and every
// change, oldest first.
type Settings struct {
	TimeZone    string
	DayStartsAt string // HH:MM
	History     []SettingsChange
}

// SettingsChange is a change of settings in force from EffectiveFrom on.
// In a change to make, an empty TimeZone or DayStartsAt keeps the value in
// force at EffectiveFrom.
type SettingsChange struct {
	EffectiveFrom time.Time
	TimeZone      string
	DayStartsAt   string // HH:MM
}

// Settings returns the settings of the user with externalID at now, and
// whether the user exists.
func (st *Store) Settings(ctx context.Context, externalID string, now time.Time) (Settings, bool, error) {
	var s Settings
	var froms []time.Time
	var zones, starts []string
	err := st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx, `
			select st.time_zone, to_char(st.day_starts_at, 'HH24:MI'),
			       array(select h.effective_from from coco.settings_history($1) h),
			       array(select h.time_zone from coco.settings_history($1) h),
			       array(select h.day_starts_at from coco.settings_history($1) h)
			  from users u cross join lateral coco.settings_at(u.id, $2) st
			 where u.external_id = $1`, externalID, now,
		).Scan(&s.TimeZone, &s.DayStartsAt, &froms, &zones, &starts)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	for i := range froms {
		s.History = append(s.History, SettingsChange{EffectiveFrom: froms[i], TimeZone: zones[i], DayStartsAt: starts[i]})
	}
	return s, err == nil, err
}

// ChangeSettings records c for the user with externalID, creating the user
// if unknown (coco.put_settings); the rollup follows. An unknown zone is an
// *InvalidError.
func (st *Store) ChangeSettings(ctx context.Context, externalID string, c SettingsChange) error {
	return st.retry(ctx, func() error {
		_, err := st.pool.Exec(ctx, `select coco.put_settings($1, $2, $3::interval, $4)`,
			externalID, nullIfEmpty(c.TimeZone), nullIfEmpty(c.DayStartsAt), c.EffectiveFrom)
		return err
	})
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// RecomputeUser rebuilds the rollup of the user with externalID for the
// user's today and reports whether that user exists.
func (st *Store) RecomputeUser(ctx context.Context, externalID string) (bool, error) {
	var n int
	err := st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx,
			`select coco.store_rollups(array(select id from users where external_id = $1), now(), clock_timestamp())`,
			externalID,
		).Scan(&n)
	})
	return n == 1, err
}

// recomputeBatch is how many users one bulk recompute transaction locks:
// ingests and reads of those users wait for it, so it stays short.
const recomputeBatch = 500

// RecomputeAll rebuilds every user's rollup for the user's today, a batch of
// users per transaction, and returns how many; progress hears the count after
// each batch.
func (st *Store) RecomputeAll(ctx context.Context, progress func(done int)) (int, error) {
	total, after := 0, "00000000-0000-0000-0000-000000000000"
	for {
		var n int
		var last *string
		err := st.retry(ctx, func() error {
			return st.pool.QueryRow(ctx,
				`select ids[cardinality(ids)]::text, coco.store_rollups(ids, now(), clock_timestamp())
				   from (select array_agg(id order by id) as ids
				           from (select id from users where id > $1::uuid order by id limit $2) as next) as batch`,
				after, recomputeBatch,
			).Scan(&last, &n)
		})
		total += n
		if err != nil || last == nil {
			return total, err
		}
		progress(total)
		after = *last
	}
}

// RefreshStale rebuilds the rollups that are not current at now for their
// user's own day (missing, or for another day or zone), a batch of users per
// transaction, and returns how many; progress hears the count after each
// batch but the last.
func (st *Store) RefreshStale(ctx context.Context, now time.Time, progress func(done int)) (int, error) {
	total := 0
	for {
		var n int
		err := st.retry(ctx, func() error {
			return st.pool.QueryRow(ctx, `select coco.refresh_stale_rollups($1::timestamptz, $2)`, now, recomputeBatch).Scan(&n)
		})
		total += n
		if err != nil || n < recomputeBatch {
			return total, err
		}
		progress(total)
	}
}

// DeleteSessions removes every session of the user with externalID (the
// trigger recomputes the rollup) and returns how many it removed.
func (st *Store) DeleteSessions(ctx context.Context, externalID string) (int64, error) {
	var n int64
	err := st.retry(ctx, func() error {
		tag, err := st.pool.Exec(ctx,
			`delete from sessions where user_id = (select id from users where external_id = $1)`, externalID)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// Ping checks that the database answers a query.
func (st *Store) Ping(ctx context.Context) error {
	return st.retry(ctx, func() error {
		_, err := st.pool.Exec(ctx, `select 1`)
		return err
	})
}

// SchemaVersion is the migration version the database is at; 0 before the
// first migration.
func (st *Store) SchemaVersion(ctx context.Context) (int32, error) {
	var v int32
	err := st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx, `select version from `+migrations.VersionTable).Scan(&v)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return 0, nil
	}
	return v, err
}

// retry runs fn once more when a second attempt is likely to succeed at once
// (see isRetryable) and the deadline allows, then classifies the error.
func (st *Store) retry(ctx context.Context, fn func() error) error {
	err := fn()
	if isRetryable(err) && ctx.Err() == nil {
		err = fn()
	}
	return classify(ctx, err)
}

// Erase erases the user with externalID (coco.erase_user): the user, every
// session, the rollup and the settings, recording the erasure so that later
// ingests of sessions that started before now are refused. It returns how
// many sessions were erased, and false for a user never seen.
func (st *Store) Erase(ctx context.Context, externalID string, now time.Time) (sessions int, known bool, err error) {
	var n *int
	err = st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx, `select coco.erase_user($1, $2)`, externalID, now).Scan(&n)
	})
	if n == nil {
		return 0, false, err
	}
	return *n, true, err
}

// Pruned counts what one Prune call deleted.
type Pruned struct {
	Sessions, Erasures int
}

// Prune deletes at most limit sessions that started before `before`, and
// the erasure records older than it (coco.prune_sessions), in one short
// transaction; a cut-off less than 8 days before now is an *InvalidError.
func (st *Store) Prune(ctx context.Context, before time.Time, limit int, now time.Time) (Pruned, error) {
	var p Pruned
	err := st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx, `select sessions, erasures from coco.prune_sessions($1, $2, $3)`,
			before, limit, now).Scan(&p.Sessions, &p.Erasures)
	})
	return p, err
}

// ExportedSession is one stored session as an export shows it.
type ExportedSession struct {
	SessionID       string
	StartedAt       time.Time
	DurationSeconds int
	SentimentScore  float64
	ReceivedAt      time.Time
}

// Exporter receives, in order, everything stored about one user.
type Exporter interface {
	User(createdAt time.Time, settings []SettingsChange) error
	Session(ExportedSession) error
	Dashboard(Snapshot) error
}

// Export reads everything stored about the user with externalID, in one
// read-only snapshot, and hands it to e as it reads: the user, the settings
// history, each session oldest first (streamed, so a long history costs no
// memory), and the dashboard snapshot at now. It returns false, having
// called nothing, for an unknown (or erased) user.
func (st *Store) Export(ctx context.Context, externalID string, now time.Time, e Exporter) (bool, error) {
	tx, err := st.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, classify(ctx, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var createdAt time.Time
	var settings []SettingsChange
	var froms []time.Time
	var zones, starts []string
	err = tx.QueryRow(ctx, `
		select u.created_at,
		       array(select h.effective_from from coco.settings_history($1) h),
		       array(select h.time_zone from coco.settings_history($1) h),
		       array(select h.day_starts_at from coco.settings_history($1) h)
		  from users u where u.external_id = $1`, externalID).Scan(&createdAt, &froms, &zones, &starts)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, classify(ctx, err)
	}
	for i := range froms {
		settings = append(settings, SettingsChange{EffectiveFrom: froms[i], TimeZone: zones[i], DayStartsAt: starts[i]})
	}
	if err := e.User(createdAt, settings); err != nil {
		return true, err
	}
	rows, err := tx.Query(ctx, `
		select s.session_id, s.started_at, s.duration_seconds, s.sentiment_score::float8, s.created_at
		  from sessions s join users u on u.id = s.user_id
		 where u.external_id = $1
		 order by s.started_at, s.session_id`, externalID)
	if err != nil {
		return true, classify(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s ExportedSession
		if err := rows.Scan(&s.SessionID, &s.StartedAt, &s.DurationSeconds, &s.SentimentScore, &s.ReceivedAt); err != nil {
			return true, err
		}
		if err := e.Session(s); err != nil {
			return true, err
		}
	}
	if err := rows.Err(); err != nil {
		return true, classify(ctx, err)
	}
	var snap Snapshot
	if err := tx.QueryRow(ctx, `select `+snapshotColumns+` from coco.dashboard_at($1, $2)`, externalID, now).Scan(snap.fields()...); err != nil {
		return true, classify(ctx, err)
	}
	return true, e.Dashboard(snap)
}

// GrantAnalyst makes role a read-only analysts' role (created NOLOGIN if it
// does not exist): it may read the tables and the coco views and run the
// read-only functions, and write nothing. Running it again is harmless.
func (st *Store) GrantAnalyst(ctx context.Context, role string) error {
	return st.retry(ctx, func() error {
		_, err := st.pool.Exec(ctx, `select coco.grant_analyst($1)`, role)
		return err
	})
}
