// Package store is the Go that calls coco's SQL engine (the functions the
// migrations in coco/sql/migrations install), and the one place where the
// driver's errors become coco's: ErrUnavailable, ConflictError, or an
// internal error.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/migrations"
)

// Store calls coco's SQL functions. It computes nothing itself: every number
// it returns comes from the functions in migrations/engine.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Session is one use-session summary as the device posts it.
type Session struct {
	SessionID       string
	UserExternalID  string
	StartedAt       time.Time
	DurationSeconds int
	SentimentScore  float64
}

// IngestStatus is what storing a session did.
type IngestStatus string

const (
	Stored    IngestStatus = "ok"
	Duplicate IngestStatus = "duplicate"
)

// Ingest stores s once: Stored the first time, Duplicate when the same
// session is already stored, or a *ConflictError when its session_id is
// stored with other values.
func (st *Store) Ingest(ctx context.Context, s Session) (IngestStatus, error) {
	var status IngestStatus
	err := st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx,
			`select coco.ingest_session($1, $2, $3, $4, $5)`,
			s.SessionID, s.UserExternalID, s.StartedAt, s.DurationSeconds, s.SentimentScore,
		).Scan(&status)
	})
	return status, err
}

// Snapshot is one user's stored seven-day rollup, oldest day first.
type Snapshot struct {
	WindowEnd          time.Time
	StreakDays         int
	DailyActivity      []bool
	DailyDurations     []int
	DailySentiment     []*float64 // nil on days without sessions
	LastSessionAt      *time.Time
	AvgDurationMinutes int
	CurrentTone        string
	UpdatedAt          time.Time
}

// Dashboard returns the snapshot of the user with externalID at the instant
// now, as coco.dashboard_snapshot computes it: the stored rollup when it is
// current, a fresh one for a known user whose window moved on, the empty
// state for an unknown user. It never creates a user.
func (st *Store) Dashboard(ctx context.Context, externalID string, now time.Time) (Snapshot, error) {
	var s Snapshot
	err := st.retry(ctx, func() error {
		// The sentiments are numeric(4,2); as float8 they print as 0.68, never 0.6800000001.
		return st.pool.QueryRow(ctx,
			`select window_end, streak_days, daily_activity, daily_durations, daily_sentiment::float8[],
			        last_session_at, avg_duration_minutes, current_tone, updated_at
			   from coco.dashboard_snapshot($1, $2)`,
			externalID, now,
		).Scan(&s.WindowEnd, &s.StreakDays, &s.DailyActivity, &s.DailyDurations, &s.DailySentiment,
			&s.LastSessionAt, &s.AvgDurationMinutes, &s.CurrentTone, &s.UpdatedAt)
	})
	return s, err
}

// DashboardVersion returns the UpdatedAt of the snapshot Dashboard would
// return for externalID at now, if that snapshot is already stored; ok is
// false when Dashboard has work to do (an unknown user or an old window).
// It only reads, so answering "not modified" costs one indexed lookup.
func (st *Store) DashboardVersion(ctx context.Context, externalID string, now time.Time) (version time.Time, ok bool, err error) {
	err = st.retry(ctx, func() error {
		err := st.pool.QueryRow(ctx,
			`select v from coco.dashboard_version($1, coco.day_of($2)) as v`, externalID, now,
		).Scan(&version)
		ok = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return version, ok, err
}

// RecomputeUser rebuilds the rollup of the user with externalID for today and
// reports whether that user exists.
func (st *Store) RecomputeUser(ctx context.Context, externalID string) (bool, error) {
	var n int
	err := st.retry(ctx, func() error {
		return st.pool.QueryRow(ctx,
			`select coco.recompute_rollups(array(select id from users where external_id = $1))`,
			externalID,
		).Scan(&n)
	})
	return n == 1, err
}

// recomputeBatch is how many users one bulk recompute transaction locks:
// ingests and reads of those users wait for it, so it stays short.
const recomputeBatch = 500

// RecomputeAll rebuilds every user's rollup for today, a batch of users per
// transaction, and returns how many.
func (st *Store) RecomputeAll(ctx context.Context) (int, error) {
	total, after := 0, "00000000-0000-0000-0000-000000000000"
	for {
		var n int
		var last *string
		err := st.retry(ctx, func() error {
			return st.pool.QueryRow(ctx,
				`select ids[cardinality(ids)]::text, coco.recompute_rollups(ids)
				   from (select array_agg(id order by id) as ids
				           from (select id from users where id > $1::uuid order by id limit $2) as next) as batch`,
				after, recomputeBatch,
			).Scan(&last, &n)
		})
		total += n
		if err != nil || last == nil {
			return total, err
		}
		after = *last
	}
}

// RefreshStale rebuilds the rollups that are missing or not for today's
// window, a batch of users per transaction, and returns how many.
func (st *Store) RefreshStale(ctx context.Context) (int, error) {
	total := 0
	for {
		var n int
		err := st.retry(ctx, func() error {
			return st.pool.QueryRow(ctx, `select coco.refresh_stale_rollups(p_limit => $1)`, recomputeBatch).Scan(&n)
		})
		total += n
		if err != nil || n < recomputeBatch {
			return total, err
		}
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
