package migrations_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coco/sql/sqltest"
	"coco/sql/store"
)

const ingestSQL = `select coco.ingest_session($1, $2, $3::timestamptz, $4::int, $5::numeric)`

func TestIngestSessionOkThenDuplicate(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	steps := []struct {
		name                   string
		user, startedAt, score string
		secs                   int32
		want                   string
	}{
		{"first time", "alice", "2026-03-10T10:00:00Z", "0.5", 90, "ok"},
		{"resent", "alice", "2026-03-10T10:00:00Z", "0.5", 90, "duplicate"},
		{"same instant in +02:00", "alice", "2026-03-10T12:00:00+02:00", "0.5", 90, "duplicate"},
		{"same score with another scale", "alice", "2026-03-10T10:00:00Z", "0.50", 90, "duplicate"},
	}
	for _, s := range steps {
		var got string
		if err := pool.QueryRow(t.Context(), ingestSQL, "s1", s.user, s.startedAt, s.secs, s.score).Scan(&got); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s: ingest_session = %q, want %q", s.name, got, s.want)
		}
	}

	var sessions, users int
	if err := pool.QueryRow(t.Context(),
		`select (select count(*) from sessions), (select count(*) from users)`).Scan(&sessions, &users); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || users != 1 {
		t.Errorf("%d sessions and %d users after one ingest and three resends, want 1 and 1", sessions, users)
	}
	id := userID(t, pool, "alice")
	if got := windowAt(t, pool, id, day); !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 0, 2}) {
		t.Errorf("daily_durations = %v, want the 90 s counted once: [0 0 0 0 0 0 2]", got.Durations)
	}
}

func TestIngestSessionConflict(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	var status string
	if err := pool.QueryRow(t.Context(), ingestSQL, "s1", "alice", "2026-03-10T10:00:00Z", 90, "0.5").Scan(&status); err != nil || status != "ok" {
		t.Fatalf("first ingest = %q, %v; want ok", status, err)
	}
	before := storedSession(t, pool, "s1")

	cases := []struct {
		name                   string
		user, startedAt, score any
		secs                   any
		wantDetail             string
	}{
		{"another user, brand new", "bob", "2026-03-10T10:00:00Z", "0.5", 90, "user_external_id"},
		{"another started_at", "alice", "2026-03-10T10:00:01Z", "0.5", 90, "started_at"},
		{"another duration", "alice", "2026-03-10T10:00:00Z", "0.5", 91, "duration_seconds"},
		{"another score", "alice", "2026-03-10T10:00:00Z", "0.51", 90, "sentiment_score"},
		{"everything else", "carol", "2026-03-11T10:00:00Z", "0.1", 10,
			"user_external_id, started_at, duration_seconds, sentiment_score"},
		{"a missing duration is not the stored one", "alice", "2026-03-10T10:00:00Z", "0.5", nil, "duration_seconds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var got string
			err := pool.QueryRow(t.Context(), ingestSQL, "s1", c.user, c.startedAt, c.secs, c.score).Scan(&got)
			if err == nil {
				t.Fatalf("ingest_session = %q, want SQLSTATE CC409", got)
			}
			pgErr := pgError(t, err, "conflicting ingest")
			if pgErr.Code != "CC409" || pgErr.Detail != c.wantDetail {
				t.Errorf("error %s with detail %q, want CC409 with detail %q", pgErr.Code, pgErr.Detail, c.wantDetail)
			}
			if after := storedSession(t, pool, "s1"); after != before {
				t.Errorf("stored session after a conflict = %+v, want it unchanged: %+v", after, before)
			}
			if users := externalIDs(t, pool); !slices.Equal(users, []string{"alice"}) {
				t.Errorf("users after a conflict = %v, want only [alice]", users)
			}
		})
	}
}

func TestStoreIngest(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	st := store.NewStore(pool)
	start := todayStart(t, pool)
	s := store.Session{SessionID: "s1", UserExternalID: "dana", StartedAt: start, DurationSeconds: 150, SentimentScore: 0.68}
	plus2 := s
	plus2.StartedAt = start.In(time.FixedZone("+02:00", 2*60*60))
	longer := s
	longer.DurationSeconds = 151
	elsewhere := s
	elsewhere.UserExternalID = "erin"
	elsewhere.SentimentScore = 0.69

	steps := []struct {
		name       string
		session    store.Session
		want       store.IngestStatus
		wantFields string // "" = no conflict
	}{
		{"first time", s, store.Stored, ""},
		{"resent", s, store.Duplicate, ""},
		{"same instant in +02:00", plus2, store.Duplicate, ""},
		{"another duration", longer, "", "duration_seconds"},
		{"another user and score", elsewhere, "", "user_external_id, sentiment_score"},
	}
	for _, step := range steps {
		got, err := st.Ingest(t.Context(), step.session)
		if step.wantFields == "" {
			if err != nil || got != step.want {
				t.Errorf("%s: Ingest = %q, %v; want %q", step.name, got, err, step.want)
			}
			continue
		}
		var conflict *store.ConflictError
		if !errors.As(err, &conflict) || conflict.Fields != step.wantFields {
			t.Errorf("%s: Ingest error %v, want a *ConflictError naming %q", step.name, err, step.wantFields)
		}
	}

	snap, err := st.Dashboard(t.Context(), "dana", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snap.DailyDurations, []int{0, 0, 0, 0, 0, 0, 3}) || snap.StreakDays != 1 || snap.CurrentTone != "positive" {
		t.Errorf("Dashboard: durations %v, streak %d, tone %s; want [0 0 0 0 0 0 3], 1, positive",
			snap.DailyDurations, snap.StreakDays, snap.CurrentTone)
	}
	if len(snap.DailySentiment) != 7 || snap.DailySentiment[0] != nil || snap.DailySentiment[6] == nil || *snap.DailySentiment[6] != 0.68 {
		t.Errorf("Dashboard: daily sentiment %v, want nil on empty days and exactly 0.68 today", snap.DailySentiment)
	}
	if want := start.Add(150 * time.Second); snap.LastSessionAt == nil || !snap.LastSessionAt.Equal(want) {
		t.Errorf("Dashboard: last session %v, want %s", snap.LastSessionAt, want)
	}
	if users := externalIDs(t, pool); !slices.Equal(users, []string{"dana"}) {
		t.Errorf("users = %v, want only [dana] (no user left by a conflict)", users)
	}
}

// storedRow is a session as stored, in text so rows compare with ==.
type storedRow struct{ User, StartedAt, Secs, Score string }

func storedSession(t *testing.T, db querier, sessionID string) storedRow {
	t.Helper()
	var r storedRow
	err := db.QueryRow(t.Context(), `
		select u.external_id, s.started_at::text, s.duration_seconds::text, s.sentiment_score::text
		from sessions s join users u on u.id = s.user_id where s.session_id = $1`, sessionID,
	).Scan(&r.User, &r.StartedAt, &r.Secs, &r.Score)
	if err != nil {
		t.Fatalf("read session %s: %v", sessionID, err)
	}
	return r
}

func externalIDs(t *testing.T, db querier) []string {
	t.Helper()
	rows, err := db.Query(t.Context(), `select external_id from users order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func userID(t *testing.T, db querier, ext string) string {
	t.Helper()
	var id string
	if err := db.QueryRow(t.Context(), `select id::text from users where external_id = $1`, ext).Scan(&id); err != nil {
		t.Fatalf("find user %s: %v", ext, err)
	}
	return id
}
