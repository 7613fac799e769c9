package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// day is the pinned "today" of the rule tests: its window runs from
// 2026-03-04 (index 1) to 2026-03-10 (index 7).
const day = "2026-03-10"

// querier is what the helpers need of a pool, a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// sess is one session of a fixture. at is an RFC 3339 instant with its
// offset; id defaults to a random session_id.
type sess struct {
	at    string
	secs  int32
	score string
	id    string
}

// addUser creates the user ext (or finds it) and stores its sessions with
// one plain insert, as an operator would in psql. Returns the user's id.
func addUser(t *testing.T, db querier, ext string, sessions ...sess) string {
	t.Helper()
	var id string
	if err := db.QueryRow(t.Context(), `select coco.ensure_user($1)::text`, ext).Scan(&id); err != nil {
		t.Fatalf("create user %q: %v", ext, err)
	}
	addSessions(t, db, id, sessions...)
	return id
}

// addSessions stores sessions for the user with userID in one statement.
func addSessions(t *testing.T, db querier, userID string, sessions ...sess) {
	t.Helper()
	if len(sessions) == 0 {
		return
	}
	var ids, ats, scores []string
	var secs []int32
	for _, s := range sessions {
		ids = append(ids, s.id)
		ats = append(ats, s.at)
		secs = append(secs, s.secs)
		scores = append(scores, s.score)
	}
	_, err := db.Exec(t.Context(), `
		insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
		select coalesce(nullif(s.id, ''), gen_random_uuid()::text), $1::uuid, s.at, s.secs, s.score
		from unnest($2::text[], $3::text[]::timestamptz[], $4::int[], $5::text[]::numeric[]) as s(id, at, secs, score)`,
		userID, ids, ats, secs, scores)
	if err != nil {
		t.Fatalf("insert sessions %v: %v", sessions, err)
	}
}

// rollup is one seven-day rollup as the tests compare it. Sentiment prints
// the numeric(4,2) array oldest first with "-" for a day without sessions,
// e.g. "- - - - - - 0.13".
type rollup struct {
	WindowEnd   string
	Streak      int
	Activity    []bool
	Durations   []int
	Sentiment   string
	LastSession *time.Time
	AvgMinutes  int
	Tone        string
}

const rollupColumns = `window_end::text, coco.streak(daily_activity), daily_activity, daily_durations,
	array_to_string(daily_sentiment, ' ', '-'), last_session_at, avg_duration_minutes, current_tone`

func scanRollup(t *testing.T, row pgx.Row, what string) rollup {
	t.Helper()
	var r rollup
	if err := row.Scan(&r.WindowEnd, &r.Streak, &r.Activity, &r.Durations, &r.Sentiment,
		&r.LastSession, &r.AvgMinutes, &r.Tone); err != nil {
		t.Fatalf("read %s: %v", what, err)
	}
	return r
}

// windowAt computes (without storing) the rollup of userID for the window
// ending on today.
func windowAt(t *testing.T, db querier, userID, today string) rollup {
	t.Helper()
	return scanRollup(t, db.QueryRow(t.Context(),
		`select `+rollupColumns+` from coco.rollup_window($1::uuid, $2::date)`, userID, today),
		"coco.rollup_window")
}

// dashboardAt reads the dashboard of ext for the window ending on today,
// which recomputes and stores a missing or other-window rollup.
func dashboardAt(t *testing.T, db querier, ext, today string) rollup {
	t.Helper()
	return scanRollup(t, db.QueryRow(t.Context(),
		`select `+rollupColumns+` from coco.dashboard($1, $2::date)`, ext, today),
		"coco.dashboard")
}

// stored reads the rollup row stored for userID.
func stored(t *testing.T, db querier, userID string) rollup {
	t.Helper()
	return scanRollup(t, db.QueryRow(t.Context(),
		`select `+rollupColumns+` from dashboard_rollups where user_id = $1::uuid`, userID),
		"dashboard_rollups")
}

// notFresh lists the users coco.rollup_drift names: those whose stored
// rollup disagrees with their sessions. Empty when every rollup is current.
func notFresh(t *testing.T, db querier) []string {
	t.Helper()
	rows, err := db.Query(t.Context(), `select external_id from coco.rollup_drift order by 1`)
	if err != nil {
		t.Fatalf("compare stored rollups with fresh ones: %v", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("compare stored rollups with fresh ones: %v", err)
	}
	return ids
}

// requireFresh fails the test unless every stored rollup equals a fresh one
// and every user's settings timeline equals its settings history.
func requireFresh(t *testing.T, db querier) {
	t.Helper()
	if stale := notFresh(t, db); len(stale) > 0 {
		t.Fatalf("stored rollups of %v differ from a fresh coco.rollup_window; want every one equal", stale)
	}
	rows, err := db.Query(t.Context(), `
		select u.external_id
		from users u
		left join lateral (
			select array_agg(us.effective_from order by us.effective_from) as from_at,
			       array_agg(us.time_zone order by us.effective_from) as time_zones,
			       array_agg(us.day_starts_at order by us.effective_from) as day_starts
			from user_settings us where us.user_id = u.id
		) h on true
		where (u.settings_from, u.settings_time_zones, u.settings_day_starts)
		      is distinct from (h.from_at, h.time_zones, h.day_starts)
		order by 1`)
	if err != nil {
		t.Fatalf("compare settings timelines with user_settings: %v", err)
	}
	drifted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("compare settings timelines with user_settings: %v", err)
	}
	if len(drifted) > 0 {
		t.Fatalf("the settings timelines of %v differ from their user_settings rows", drifted)
	}
}

// todayStart is the instant the database's current UTC day began.
func todayStart(t *testing.T, db querier) time.Time {
	t.Helper()
	var at time.Time
	if err := db.QueryRow(t.Context(), `select coco.day_start(coco.today())`).Scan(&at); err != nil {
		t.Fatalf("read the start of today: %v", err)
	}
	return at.UTC()
}

func rfc3339(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }

// activity parses a pattern like "...x.xx" (oldest day first, x = active).
func activity(pattern string) []bool {
	out := make([]bool, len(pattern))
	for i, c := range pattern {
		out[i] = c == 'x'
	}
	return out
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func timeOf(t *testing.T, s string) *time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return &at
}

func fmtTime(at *time.Time) string {
	if at == nil {
		return "null"
	}
	return at.UTC().Format(time.RFC3339)
}

// diff names every field where got differs from want, or returns "".
func (got rollup) diff(want rollup) string {
	var d []string
	if got.WindowEnd != want.WindowEnd {
		d = append(d, fmt.Sprintf("window_end %s, want %s", got.WindowEnd, want.WindowEnd))
	}
	if got.Streak != want.Streak {
		d = append(d, fmt.Sprintf("streak %d, want %d", got.Streak, want.Streak))
	}
	if !slices.Equal(got.Activity, want.Activity) {
		d = append(d, fmt.Sprintf("daily_activity %v, want %v", got.Activity, want.Activity))
	}
	if !slices.Equal(got.Durations, want.Durations) {
		d = append(d, fmt.Sprintf("daily_durations %v, want %v", got.Durations, want.Durations))
	}
	if got.Sentiment != want.Sentiment {
		d = append(d, fmt.Sprintf("daily_sentiment %q, want %q", got.Sentiment, want.Sentiment))
	}
	if !equalTime(got.LastSession, want.LastSession) {
		d = append(d, fmt.Sprintf("last_session_at %s, want %s", fmtTime(got.LastSession), fmtTime(want.LastSession)))
	}
	if got.AvgMinutes != want.AvgMinutes {
		d = append(d, fmt.Sprintf("avg_duration_minutes %d, want %d", got.AvgMinutes, want.AvgMinutes))
	}
	if got.Tone != want.Tone {
		d = append(d, fmt.Sprintf("current_tone %s, want %s", got.Tone, want.Tone))
	}
	return strings.Join(d, "; ")
}

// pgError returns the PostgreSQL error in err, failing the test if there is none.
func pgError(t *testing.T, err error, what string) *pgconn.PgError {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("%s: got error %v, want a PostgreSQL error", what, err)
	}
	return pgErr
}
