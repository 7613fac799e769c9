package migrations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"coco/sql/sqltest"

	"github.com/jackc/pgx/v5"
)

// setting is one row of a user's settings history.
type setting struct {
	from, zone, dayStart string
}

// addSettings stores settings changes for the user with userID, as psql would.
func addSettings(t *testing.T, db querier, userID string, settings ...setting) {
	t.Helper()
	for _, s := range settings {
		if s.dayStart == "" {
			s.dayStart = "00:00"
		}
		if _, err := db.Exec(t.Context(),
			`insert into user_settings (user_id, effective_from, time_zone, day_starts_at) values ($1::uuid, $2, $3, $4::interval)`,
			userID, s.from, s.zone, s.dayStart); err != nil {
			t.Fatalf("insert settings %+v: %v", s, err)
		}
	}
}

// localView is a dashboard read at a pinned instant: the window it shows and
// the zone, with the rollup.
type localView struct {
	rollup
	Zone      string
	UpdatedAt time.Time
}

// dashboardNow reads the dashboard of ext at the instant now.
func dashboardNow(t *testing.T, db querier, ext, now string) localView {
	t.Helper()
	var v localView
	err := db.QueryRow(t.Context(), `
		select window_end::text, streak_days, daily_activity, daily_durations,
		       array_to_string(daily_sentiment, ' ', '-'), last_session_at, avg_duration_minutes, current_tone,
		       time_zone, updated_at
		  from coco.dashboard_at($1, $2::timestamptz)`, ext, now).Scan(
		&v.WindowEnd, &v.Streak, &v.Activity, &v.Durations, &v.Sentiment, &v.LastSession, &v.AvgMinutes, &v.Tone,
		&v.Zone, &v.UpdatedAt)
	if err != nil {
		t.Fatalf("dashboard of %s at %s: %v", ext, now, err)
	}
	return v
}

// expectWindow fails t unless v shows the window ending on end in zone,
// with the activity pattern and minutes given.
func expectWindow(t *testing.T, what string, v localView, end, zone, pattern string, minutes []int) {
	t.Helper()
	want := rollup{WindowEnd: end, Activity: activity(pattern), Durations: minutes}
	got := rollup{WindowEnd: v.WindowEnd, Activity: v.Activity, Durations: v.Durations}
	if d := got.diff(want); d != "" || v.Zone != zone {
		t.Errorf("%s: %s; zone %s, want %s", what, d, v.Zone, zone)
	}
}

// A session late in the evening in Los Angeles is the next UTC day; it
// counts on the family's day, and their today is their date all afternoon.
func TestLocalDayLosAngeles(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "grandma")
	addSettings(t, pool, id, setting{from: "2026-01-01T00:00:00Z", zone: "America/Los_Angeles"})
	addSessions(t, pool, id, sess{at: "2026-01-20T23:30:00-08:00", secs: 600, score: "0.7"}) // 2026-01-21T07:30Z

	// Jan 21, 08:00 in Los Angeles: the session was yesterday, not today.
	expectWindow(t, "Jan 21 08:00 PST", dashboardNow(t, pool, "grandma", "2026-01-21T16:00:00Z"),
		"2026-01-21", "America/Los_Angeles", ".....x.", []int{0, 0, 0, 0, 0, 10, 0})
	// Jan 21, 16:30 in Los Angeles is Jan 22 in UTC: today is still Jan 21.
	expectWindow(t, "Jan 21 16:30 PST", dashboardNow(t, pool, "grandma", "2026-01-22T00:30:00Z"),
		"2026-01-21", "America/Los_Angeles", ".....x.", []int{0, 0, 0, 0, 0, 10, 0})
	requireFresh(t, pool)
}

// The window and the dashboard's version move at the family's midnight,
// for whole-hour and 45-minute offsets alike, and not at midnight UTC.
func TestLocalMidnightFlipsTheWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone, beforeMidnight, midnight string
	}{
		{"Asia/Tokyo", "2026-03-10T14:59:59Z", "2026-03-10T15:00:00Z"},
		{"Asia/Kathmandu", "2026-03-10T18:14:59Z", "2026-03-10T18:15:00Z"},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			t.Parallel()
			pool := sqltest.Pool(t)
			id := addUser(t, pool, "kid")
			addSettings(t, pool, id, setting{from: "2026-03-01T00:00:00Z", zone: tc.zone})
			addSessions(t, pool, id, sess{at: "2026-03-10T12:00:00+09:00", secs: 300, score: "0.5"})

			before := dashboardNow(t, pool, "kid", tc.beforeMidnight)
			at := dashboardNow(t, pool, "kid", tc.midnight)
			utcMidnight := dashboardNow(t, pool, "kid", "2026-03-11T00:00:00Z")
			if before.WindowEnd != "2026-03-10" || at.WindowEnd != "2026-03-11" || utcMidnight.WindowEnd != "2026-03-11" {
				t.Errorf("window ends %s, %s, %s at %s, %s and UTC midnight; want 2026-03-10, then 2026-03-11 from local midnight on",
					before.WindowEnd, at.WindowEnd, utcMidnight.WindowEnd, tc.beforeMidnight, tc.midnight)
			}
			if !at.UpdatedAt.After(before.UpdatedAt) || !utcMidnight.UpdatedAt.Equal(at.UpdatedAt) {
				t.Errorf("updated_at %s, %s, %s; want it to move at local midnight (the new day's start) and not at UTC midnight",
					before.UpdatedAt, at.UpdatedAt, utcMidnight.UpdatedAt)
			}
			// A new day's updated_at is its start, unless the stored one is
			// later (then just after it): the same wherever it is computed.
			want, _ := time.Parse(time.RFC3339, tc.midnight)
			if next := before.UpdatedAt.Add(time.Microsecond); next.After(want) {
				want = next
			}
			if !at.UpdatedAt.Equal(want) {
				t.Errorf("updated_at of the new day's window = %s, want %s", at.UpdatedAt, want)
			}
		})
	}
}

// Daylight saving days are 23 and 25 hours long: sessions at 00:30 and 23:30
// local both count on that day, and the week around the change has seven
// days and an unbroken streak.
func TestDaylightSavingDays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, day, early, late, now string
	}{
		{"spring forward", "2026-03-29", "2026-03-29T00:30:00+01:00", "2026-03-29T23:30:00+02:00", "2026-03-31T12:00:00Z"},
		{"fall back", "2026-10-25", "2026-10-25T00:30:00+02:00", "2026-10-25T23:30:00+01:00", "2026-10-27T12:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := sqltest.Pool(t)
			id := addUser(t, pool, "berlin")
			addSettings(t, pool, id, setting{from: "2026-01-01T00:00:00Z", zone: "Europe/Berlin"})
			end, _ := time.Parse(time.DateOnly, tc.now[:10])
			var sessions []sess
			for d := range 7 { // one noon session a day for the week, and the two at the edges of the change day
				day := end.AddDate(0, 0, -d).Format(time.DateOnly)
				if day == tc.day {
					continue
				}
				sessions = append(sessions, sess{at: day + "T12:00:00+01:00", secs: 60, score: "0.5"})
			}
			sessions = append(sessions, sess{at: tc.early, secs: 120, score: "0.5"}, sess{at: tc.late, secs: 180, score: "0.5"})
			addSessions(t, pool, id, sessions...)

			v := dashboardNow(t, pool, "berlin", tc.now)
			changeIndex := 6 - int(end.Sub(mustDate(t, tc.day)).Hours()/24)
			minutes := []int{1, 1, 1, 1, 1, 1, 1}
			minutes[changeIndex] = 5
			expectWindow(t, tc.name, v, tc.now[:10], "Europe/Berlin", "xxxxxxx", minutes)
			if v.Streak != 7 {
				t.Errorf("streak across the change = %d, want 7", v.Streak)
			}
			requireFresh(t, pool)
		})
	}
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A day that starts at 04:00: a session at 01:30 belongs to the evening
// before, and at 03:59 the family's today is still yesterday.
func TestDayStartsAt(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "night-owl")
	addSettings(t, pool, id, setting{from: "2026-01-01T00:00:00Z", zone: "Europe/Berlin", dayStart: "04:00"})
	addSessions(t, pool, id, sess{at: "2026-03-10T01:30:00+01:00", secs: 600, score: "0.5"})

	expectWindow(t, "03:59", dashboardNow(t, pool, "night-owl", "2026-03-10T03:59:00+01:00"),
		"2026-03-09", "Europe/Berlin", "......x", []int{0, 0, 0, 0, 0, 0, 10})
	expectWindow(t, "04:00", dashboardNow(t, pool, "night-owl", "2026-03-10T04:00:00+01:00"),
		"2026-03-10", "Europe/Berlin", ".....x.", []int{0, 0, 0, 0, 0, 10, 0})
}

// A family that moves from Tokyo to Los Angeles: sessions before the move
// keep their Tokyo days, today is Los Angeles' date, and no day is counted
// twice or lost.
func TestTravelKeepsEarlierDays(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "traveller")
	addSettings(t, pool, id,
		setting{from: "2026-01-01T00:00:00Z", zone: "Asia/Tokyo"},
		setting{from: "2026-03-07T00:00:00Z", zone: "America/Los_Angeles"}) // flew on Mar 7 (Tokyo morning)
	addSessions(t, pool, id,
		sess{at: "2026-03-05T08:00:00+09:00", secs: 60, score: "0.5"},  // Tokyo, Mar 5
		sess{at: "2026-03-06T23:00:00+09:00", secs: 120, score: "0.5"}, // Tokyo, Mar 6 (14:00Z Mar 6)
		sess{at: "2026-03-06T18:00:00-08:00", secs: 180, score: "0.5"}, // LA, Mar 6 (02:00Z Mar 7)
		sess{at: "2026-03-09T20:00:00-07:00", secs: 240, score: "0.5"}, // LA, Mar 9 (after DST)
	)
	v := dashboardNow(t, pool, "traveller", "2026-03-10T06:00:00Z") // Mar 9, 23:00 in Los Angeles
	// Mar 3..9: Mar 5 (1 min), Mar 6 (2 + 3 min, one day), Mar 9 (4 min).
	expectWindow(t, "after the move", v, "2026-03-09", "America/Los_Angeles", "..xx..x", []int{0, 0, 1, 5, 0, 0, 4})
	requireFresh(t, pool)

	// An operator corrects the history in psql: the move never happened,
	// then the family was in UTC all along.
	if _, err := pool.Exec(t.Context(), `delete from user_settings where user_id = $1::uuid and time_zone = 'America/Los_Angeles'`, id); err != nil {
		t.Fatal(err)
	}
	requireFresh(t, pool)
	v = dashboardNow(t, pool, "traveller", "2026-03-10T06:00:00Z") // Mar 10, 15:00 in Tokyo
	expectWindow(t, "without the move", v, "2026-03-10", "Asia/Tokyo", ".xxx..x", []int{0, 1, 2, 3, 0, 0, 4})
	if _, err := pool.Exec(t.Context(), `update user_settings set time_zone = 'UTC' where user_id = $1::uuid`, id); err != nil {
		t.Fatal(err)
	}
	requireFresh(t, pool)
	v = dashboardNow(t, pool, "traveller", "2026-03-10T06:00:00Z")
	expectWindow(t, "in UTC all along", v, "2026-03-10", "UTC", "x.xx..x", []int{1, 0, 2, 3, 0, 0, 4})
}

// A device offline for days sends a session three days after it started:
// it lands on the day it started. With a time zone that differs from the
// one in force then, it inserts a change into the middle of the history.
func TestLateSyncLandsOnItsStartDay(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "offline")
	addSettings(t, pool, id,
		setting{from: "2026-01-01T00:00:00Z", zone: "Asia/Tokyo"},
		setting{from: "2026-03-09T00:00:00Z", zone: "America/Los_Angeles"})

	ingest := func(sessionID, startedAt, zone string) string {
		t.Helper()
		var status string
		if err := pool.QueryRow(t.Context(),
			`select coco.ingest_session($1, 'offline', $2::timestamptz, 600, 0.5, nullif($3, ''))`,
			sessionID, startedAt, zone).Scan(&status); err != nil {
			t.Fatalf("ingest %s: %v", sessionID, err)
		}
		return status
	}
	// Started Mar 7, 08:00 in Tokyo (Mar 6, 23:00Z); sent on Mar 10.
	if got := ingest("late-1", "2026-03-06T23:00:00Z", ""); got != "ok" {
		t.Fatalf("late session = %s, want ok", got)
	}
	v := dashboardNow(t, pool, "offline", "2026-03-10T20:00:00Z") // Mar 10, 13:00 in Los Angeles
	expectWindow(t, "late session", v, "2026-03-10", "America/Los_Angeles", "...x...", []int{0, 0, 0, 10, 0, 0, 0})

	// Started Mar 8, 17:00Z, when the device says it was already in Los
	// Angeles (Mar 8, 10:00 PDT), while the history still says Tokyo (Mar 9,
	// 02:00 there): the history gains Los Angeles from that instant.
	if got := ingest("late-2", "2026-03-08T17:00:00Z", "America/Los_Angeles"); got != "ok" {
		t.Fatalf("late session with a zone = %s, want ok", got)
	}
	var history []string
	rows, err := pool.Query(t.Context(),
		`select to_char(effective_from at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || time_zone from coco.settings_history('offline')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		history = append(history, h)
	}
	want := []string{"2026-01-01 00:00 Asia/Tokyo", "2026-03-08 17:00 America/Los_Angeles", "2026-03-09 00:00 America/Los_Angeles"}
	if strings.Join(history, "; ") != strings.Join(want, "; ") {
		t.Errorf("history %q, want %q", history, want)
	}
	v = dashboardNow(t, pool, "offline", "2026-03-10T20:00:00Z")
	expectWindow(t, "with its zone", v, "2026-03-10", "America/Los_Angeles", "...xx..", []int{0, 0, 0, 10, 10, 0, 0})
	requireFresh(t, pool)
}

// time_zone is a report about the user, not one of the session's values: a
// resend that differs only in it is a duplicate, and changes nothing.
func TestDuplicateWithAnotherZoneChangesNothing(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	started := time.Now().Add(-time.Hour)
	for i, zone := range []string{"Europe/Berlin", "Asia/Tokyo", ""} {
		var status string
		if err := pool.QueryRow(t.Context(),
			`select coco.ingest_session('dup-1', 'dup', $1, 60, 0.5, nullif($2, ''))`,
			started, zone).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "ok", false: "duplicate"}[i == 0]; status != want {
			t.Errorf("ingest %d with zone %q = %s, want %s", i, zone, status, want)
		}
	}
	var zones []string
	if err := pool.QueryRow(t.Context(), `select array(select time_zone from coco.settings_history('dup'))`).Scan(&zones); err != nil {
		t.Fatal(err)
	}
	if len(zones) != 1 || zones[0] != "Europe/Berlin" {
		t.Errorf("history zones %v, want only the first ingest's Europe/Berlin", zones)
	}
}

// An unknown zone is refused, and stores nothing.
func TestUnknownZoneIsRefused(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	for _, zone := range []string{"Mars/Olympus_Mons", "PST", "UTC+3"} {
		_, err := pool.Exec(t.Context(),
			`select coco.ingest_session('z-1', 'zoned', now() - interval '1 hour', 60, 0.5, $1)`, zone)
		if pgErr := pgError(t, err, "ingest with zone "+zone); pgErr.Code != "CC422" || pgErr.Detail != "time_zone" {
			t.Errorf("ingest with zone %s: %s %s, want CC422 time_zone", zone, pgErr.Code, pgErr.Detail)
		}
		_, err = pool.Exec(t.Context(), `select coco.put_settings('zoned', $1, null, now())`, zone)
		if pgErr := pgError(t, err, "put_settings "+zone); pgErr.Code != "CC422" {
			t.Errorf("put_settings %s: %s, want CC422", zone, pgErr.Code)
		}
	}
	var users int
	if err := pool.QueryRow(t.Context(), `select count(*) from users`).Scan(&users); err != nil || users != 0 {
		t.Errorf("%d users after refused requests (%v), want none", users, err)
	}
}

// The window's scan is bounded by the (user_id, started_at) index whatever
// the zone: both ends of started_at are index conditions.
func TestWindowScanIsBoundedByTheIndex(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "planned")
	addSettings(t, pool, id, setting{from: "2026-01-01T00:00:00Z", zone: "Pacific/Kiritimati"})
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The table is tiny; without this the planner rightly prefers a
	// sequential scan, and the question is what the index is asked.
	if _, err := conn.Exec(t.Context(), `set enable_seqscan = off; set enable_bitmapscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []map[string]any
	if err := conn.QueryRow(t.Context(),
		`explain (format json) select * from coco.rollup_window($1::uuid, date '2026-03-10')`, id).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(plan)
	found := false
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if n["Index Name"] == "sessions_user_id_started_at_idx" {
			cond, _ := n["Index Cond"].(string)
			if strings.Contains(cond, "started_at >=") && strings.Contains(cond, "started_at <") {
				found = true
			}
		}
		kids, _ := n["Plans"].([]any)
		for _, k := range kids {
			walk(k.(map[string]any))
		}
	}
	walk(plan[0]["Plan"].(map[string]any))
	if !found {
		t.Errorf("rollup_window does not bound started_at on both ends in sessions_user_id_started_at_idx:\n%s", raw)
	}
}

// Settings changes race ingests for one user; every final rollup equals a
// fresh recompute.
func TestSettingsChangesRacingIngests(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	zones := []string{"Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin", "Asia/Kathmandu", "UTC"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				_, err := pool.Exec(t.Context(),
					`select coco.ingest_session($1, 'racer', now() - make_interval(hours => $2), 60, 0.5)`,
					fmt.Sprintf("race-%d-%d", w, i), (w*10+i)%140)
				if err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			for i := range 10 {
				_, err := pool.Exec(t.Context(),
					`select coco.put_settings('racer', $1, null, now() - make_interval(hours => $2))`,
					zones[(w+i)%len(zones)], (w*7+i*13)%150)
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	requireFresh(t, pool)
	var current bool
	if err := pool.QueryRow(t.Context(),
		`select not is_stale from coco.dashboard_overview where external_id = 'racer'`).Scan(&current); err != nil || !current {
		t.Errorf("racer's stored rollup current = %t (%v), want it stored for the user's own today", current, err)
	}
}

// A corrects a user's zone and keeps its transaction open; B's ingest for the
// same user must wait for A's lock on the user, and once both commit the
// rollup holds B's session on the day A's correction gives it.
func TestSettingsChangeAndIngestOfOneUserSerialize(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	ctx := t.Context()
	start := todayStart(t, pool)
	addUser(t, pool, "mover", sess{at: rfc3339(start.Add(time.Hour)), secs: 60, score: "0.5"})
	serializes(t, pool,
		// Pacific/Kiritimati is UTC+14: today's early sessions move to
		// tomorrow's local date, which is the user's today there.
		writer{"A's settings change", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `select coco.put_settings('mover', 'Pacific/Kiritimati', null, $1)`, start.AddDate(0, 0, -3))
			return err
		}},
		writer{"B's ingest", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `select coco.ingest_session('b', 'mover', $1, 180, 0.5)`, start.Add(2*time.Hour))
			return err
		}})
	requireFresh(t, pool)
	var zone string
	var stale bool
	if err := pool.QueryRow(ctx, `select r.time_zone, o.is_stale from coco.dashboard_overview o
		join users u using (external_id) join dashboard_rollups r on r.user_id = u.id where external_id = 'mover'`).Scan(&zone, &stale); err != nil {
		t.Fatal(err)
	}
	if zone != "Pacific/Kiritimati" || stale {
		t.Errorf("stored rollup in zone %s, stale %t; want it computed with A's change, for the user's today", zone, stale)
	}
}
