package migrations_test

import (
	"slices"
	"testing"
	"time"

	"coco/sql/sqltest"
)

// The triggers on sessions recompute for the real today, so these tests place
// sessions relative to the database's current UTC day and compare the stored
// rollup with a fresh coco.rollup_window(user, coco.today()).

func TestTriggerRecomputesOnInsertUpdateDelete(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	at := start.Add(time.Hour)
	id := addUser(t, pool, "edited", sess{id: "s1", at: rfc3339(at), secs: 90, score: "0.70"})
	end := func(at time.Time, secs int) *time.Time {
		e := at.Add(time.Duration(secs) * time.Second)
		return &e
	}

	steps := []struct {
		name          string
		sql           string // "" = the insert above
		wantActivity  string
		wantDurations []int
		wantTone      string
		wantLast      *time.Time
	}{
		{"insert", "",
			"......x", []int{0, 0, 0, 0, 0, 0, 2}, "positive", end(at, 90)},
		{"update duration", `update sessions set duration_seconds = 600 where session_id = 's1'`,
			"......x", []int{0, 0, 0, 0, 0, 0, 10}, "positive", end(at, 600)},
		{"update sentiment", `update sessions set sentiment_score = 0.1 where session_id = 's1'`,
			"......x", []int{0, 0, 0, 0, 0, 0, 10}, "negative", end(at, 600)},
		{"move to yesterday", `update sessions set started_at = started_at - interval '1 day' where session_id = 's1'`,
			".....x.", []int{0, 0, 0, 0, 0, 10, 0}, "negative", end(at.AddDate(0, 0, -1), 600)},
		{"delete", `delete from sessions where session_id = 's1'`,
			".......", []int{0, 0, 0, 0, 0, 0, 0}, "neutral", nil},
	}
	for _, s := range steps {
		if s.sql != "" {
			if _, err := pool.Exec(t.Context(), s.sql); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		got := stored(t, pool, id)
		if !slices.Equal(got.Activity, activity(s.wantActivity)) || !slices.Equal(got.Durations, s.wantDurations) ||
			got.Tone != s.wantTone || !equalTime(got.LastSession, s.wantLast) {
			t.Errorf("after %s: stored activity %v, durations %v, tone %s, last %s; want %v, %v, %s, %s",
				s.name, got.Activity, got.Durations, got.Tone, fmtTime(got.LastSession),
				activity(s.wantActivity), s.wantDurations, s.wantTone, fmtTime(s.wantLast))
		}
		if stale := notFresh(t, pool); len(stale) > 0 {
			t.Errorf("after %s: stored rollup differs from a fresh rollup_window; want equal", s.name)
		}
	}
}

func TestTriggerUpdateMovingSessionRecomputesBothUsers(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	from := addUser(t, pool, "from",
		sess{id: "moved", at: rfc3339(start.Add(time.Hour)), secs: 120, score: "0.9"},
		sess{id: "kept", at: rfc3339(start.Add(-time.Hour)), secs: 60, score: "0.2"},
	)
	to := addUser(t, pool, "to")

	if _, err := pool.Exec(t.Context(), `update sessions set user_id = $1::uuid where session_id = 'moved'`, to); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, pool, from); !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 1, 0}) || got.Tone != "negative" {
		t.Errorf("rollup of the user the session left: durations %v, tone %s; want [0 0 0 0 0 1 0], negative", got.Durations, got.Tone)
	}
	if got := stored(t, pool, to); !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 0, 2}) || got.Tone != "positive" {
		t.Errorf("rollup of the user the session joined: durations %v, tone %s; want [0 0 0 0 0 0 2], positive", got.Durations, got.Tone)
	}
	requireFresh(t, pool)
}

func TestTriggerMultiRowInsertRecomputesEveryUser(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	ids := map[string]string{}
	for _, ext := range []string{"ann", "ben", "cat"} {
		ids[ext] = addUser(t, pool, ext)
	}

	// One statement, users interleaved.
	_, err := pool.Exec(t.Context(), `
		insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
		select s.sid, u.id, $1::timestamptz + s.offs, s.secs, s.score
		from (values ('c1', 'cat', interval '1 hour', 180, 0.1),
		             ('a1', 'ann', interval '2 hours', 60, 0.5),
		             ('b1', 'ben', interval '-1 hour', 120, 0.9),
		             ('a2', 'ann', interval '3 hours', 60, 0.5),
		             ('c2', 'cat', interval '-25 hours', 240, 0.1)) as s(sid, ext, offs, secs, score)
		join users u on u.external_id = s.ext`, start)
	if err != nil {
		t.Fatal(err)
	}

	want := map[string][]int{
		"ann": {0, 0, 0, 0, 0, 0, 2},
		"ben": {0, 0, 0, 0, 0, 2, 0},
		"cat": {0, 0, 0, 0, 4, 0, 3},
	}
	for ext, durations := range want {
		if got := stored(t, pool, ids[ext]); !slices.Equal(got.Durations, durations) {
			t.Errorf("stored daily_durations of %s = %v, want %v", ext, got.Durations, durations)
		}
	}
	requireFresh(t, pool)
}

func TestDeletingUserDeletesRollup(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	addUser(t, pool, "leaving", sess{at: rfc3339(start.Add(time.Hour)), secs: 60, score: "0.5"})
	addUser(t, pool, "staying", sess{at: rfc3339(start.Add(time.Hour)), secs: 60, score: "0.5"})

	// The cascade deletes the sessions, whose trigger must not recreate the rollup.
	if _, err := pool.Exec(t.Context(), `delete from users where external_id = 'leaving'`); err != nil {
		t.Fatalf("delete a user with sessions: %v", err)
	}
	var n int
	if err := pool.QueryRow(t.Context(), `select count(*) from dashboard_rollups`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d rollups after deleting one of two users, want 1", n)
	}
}

func TestRecomputeKeepsUpdatedAtUnlessRollupChanges(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	start := todayStart(t, pool)
	id := addUser(t, pool, "steady", sess{at: rfc3339(start.Add(time.Hour)), secs: 60, score: "0.5"})
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := pool.Exec(t.Context(), `update dashboard_rollups set updated_at = $1 where user_id = $2::uuid`, old, id); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		sql      string
		wantKept bool
	}{
		{"explicit recompute, nothing changed",
			`select coco.recompute_rollups(array[$1::uuid])`, true},
		{"insert of a session before the window",
			`insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
			 values ('old', $1::uuid, now() - interval '10 days', 600, 0.9)`, true},
		{"insert of a session today",
			`insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
			 values ('new', $1::uuid, coco.day_start(coco.today()) + interval '2 hours', 600, 0.9)`, false},
	}
	for _, s := range steps {
		if _, err := pool.Exec(t.Context(), s.sql, id); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var updated time.Time
		var recent bool
		if err := pool.QueryRow(t.Context(),
			`select updated_at, updated_at > now() - interval '1 minute' from dashboard_rollups where user_id = $1::uuid`, id,
		).Scan(&updated, &recent); err != nil {
			t.Fatal(err)
		}
		if s.wantKept && !updated.Equal(old) {
			t.Errorf("after %s: updated_at = %s, want it kept at %s", s.name, updated.UTC(), old)
		}
		if !s.wantKept && !recent {
			t.Errorf("after %s: updated_at = %s, want it moved to now", s.name, updated.UTC())
		}
	}
	requireFresh(t, pool)
}

func TestTriggerRecomputesEveryUserOnTruncate(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	at := rfc3339(todayStart(t, pool).Add(time.Hour))
	first := addUser(t, pool, "first", sess{id: "a", at: at, secs: 600, score: "0.9"})
	second := addUser(t, pool, "second", sess{id: "b", at: at, secs: 120, score: "0.1"})

	if _, err := pool.Exec(t.Context(), `truncate sessions`); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{first, second} {
		got := stored(t, pool, id)
		if !slices.Equal(got.Durations, []int{0, 0, 0, 0, 0, 0, 0}) || got.Tone != "neutral" || got.LastSession != nil {
			t.Errorf("rollup after truncate: durations %v, tone %s, last %s; want the empty state",
				got.Durations, got.Tone, fmtTime(got.LastSession))
		}
	}
	requireFresh(t, pool)
}
