package migrations_test

import (
	"fmt"
	"slices"
	"testing"

	"coco/sql/sqltest"
)

// One test per rollup rule (README, "The SQL engine"), each at the pinned day
// 2026-03-10 through coco.rollup_window, coco.dashboard or coco.streak.

func TestRollupDailyMinutesRoundHalfUp(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		name string
		secs []int32 // sessions today, one an hour from 08:00
		want int
	}{
		{"90 s + 30 s is 2 min", []int32{90, 30}, 2},
		{"90 s is 1.5 min, rounds up to 2", []int32{90}, 2},
		{"89 s rounds down to 1", []int32{89}, 1},
		{"30 s is half a minute, rounds up to 1", []int32{30}, 1},
		{"29 s rounds down to 0", []int32{29}, 0},
		{"two 45 s sessions sum before rounding", []int32{45, 45}, 2},
		{"a whole day", []int32{86400}, 1440},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var sessions []sess
			for k, secs := range c.secs {
				sessions = append(sessions, sess{at: fmt.Sprintf("2026-03-10T%02d:00:00Z", 8+k), secs: secs, score: "0.5"})
			}
			id := addUser(t, pool, fmt.Sprintf("minutes-%d", i), sessions...)

			got := windowAt(t, pool, id, day)
			want := []int{0, 0, 0, 0, 0, 0, c.want}
			if !slices.Equal(got.Durations, want) {
				t.Errorf("daily_durations = %v, want %v", got.Durations, want)
			}
			if !got.Activity[6] {
				t.Errorf("daily_activity = %v, want today active", got.Activity)
			}
		})
	}
}

func TestRollupZeroMinuteDayIsActiveButNotAveraged(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	id := addUser(t, pool, "brief",
		sess{at: "2026-03-09T12:00:00Z", secs: 20, score: "0.5"},
		sess{at: "2026-03-10T12:00:00Z", secs: 180, score: "0.7"},
	)

	got := windowAt(t, pool, id, day)
	want := rollup{
		WindowEnd:   day,
		Streak:      2,
		Activity:    activity(".....xx"),
		Durations:   []int{0, 0, 0, 0, 0, 0, 3},
		Sentiment:   "- - - - - 0.50 0.70",
		LastSession: timeOf(t, "2026-03-10T12:03:00Z"),
		AvgMinutes:  3, // (0 + 3) / 2 would round to 2
		Tone:        "positive",
	}
	if d := got.diff(want); d != "" {
		t.Errorf("a 20 s day and a 3 min day: %s", d)
	}
}

func TestRollupSessionCountsOnItsStartDay(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		name          string
		at            string
		wantActivity  string
		wantDurations []int
		wantLast      string // "" = null
	}{
		{"23:50 for 30 min counts on the day it starts", "2026-03-09T23:50:00Z",
			".....x.", []int{0, 0, 0, 0, 0, 30, 0}, "2026-03-10T00:20:00Z"},
		{"today 23:50 for 30 min ends tomorrow and counts today", "2026-03-10T23:50:00Z",
			"......x", []int{0, 0, 0, 0, 0, 0, 30}, "2026-03-11T00:20:00Z"},
		{"started before the window, ending inside it, counts nowhere", "2026-03-03T23:50:00Z",
			".......", []int{0, 0, 0, 0, 0, 0, 0}, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			id := addUser(t, pool, fmt.Sprintf("midnight-%d", i), sess{at: c.at, secs: 1800, score: "0.5"})

			got := windowAt(t, pool, id, day)
			if !slices.Equal(got.Activity, activity(c.wantActivity)) {
				t.Errorf("daily_activity = %v, want %v (%s)", got.Activity, activity(c.wantActivity), c.wantActivity)
			}
			if !slices.Equal(got.Durations, c.wantDurations) {
				t.Errorf("daily_durations = %v, want %v", got.Durations, c.wantDurations)
			}
			wantLast := fmtTime(nil)
			if c.wantLast != "" {
				wantLast = fmtTime(timeOf(t, c.wantLast))
			}
			if fmtTime(got.LastSession) != wantLast {
				t.Errorf("last_session_at = %s, want %s", fmtTime(got.LastSession), wantLast)
			}
		})
	}
}

func TestRollupDailySentimentMeanRoundsHalfUp(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		name   string
		scores []string // sessions today
		want   string   // today's daily_sentiment
	}{
		{"0.125 rounds up", []string{"0.125"}, "0.13"},
		{"mean (0.12 + 0.13) / 2 = 0.125 rounds up", []string{"0.12", "0.13"}, "0.13"},
		{"0.124 rounds down", []string{"0.124"}, "0.12"},
		{"mean 0.1666 rounds to 0.17", []string{"0.1", "0.2", "0.2"}, "0.17"},
		{"two places even when exact", []string{"0.5"}, "0.50"},
		{"mean 0.995 rounds up to 1.00", []string{"0.994", "0.996"}, "1.00"},
		{"zero is a sentiment, not a missing one", []string{"0"}, "0.00"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var sessions []sess
			for k, score := range c.scores {
				sessions = append(sessions, sess{at: fmt.Sprintf("2026-03-10T%02d:00:00Z", 8+k), secs: 60, score: score})
			}
			id := addUser(t, pool, fmt.Sprintf("sentiment-%d", i), sessions...)

			got := windowAt(t, pool, id, day)
			if want := "- - - - - - " + c.want; got.Sentiment != want {
				t.Errorf("daily_sentiment of %v = %q, want %q", c.scores, got.Sentiment, want)
			}
		})
	}
}

func TestRollupToneThresholds(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		score string
		want  string
	}{
		{"0.61", "positive"},
		{"0.60", "neutral"},
		{"0.40", "neutral"},
		{"0.39", "negative"},
		{"1", "positive"},
		{"0", "negative"},
		// The tone reads the day's rounded mean.
		{"0.605", "positive"},
		{"0.604", "neutral"},
		{"0.395", "neutral"},
		{"0.394", "negative"},
	}
	for i, c := range cases {
		t.Run(c.score, func(t *testing.T) {
			t.Parallel()
			id := addUser(t, pool, fmt.Sprintf("tone-%d", i), sess{at: "2026-03-10T12:00:00Z", secs: 60, score: c.score})

			if got := windowAt(t, pool, id, day); got.Tone != c.want {
				t.Errorf("current_tone for a day at %s = %s, want %s", c.score, got.Tone, c.want)
			}
		})
	}
}

func TestRollupToneFollowsNewestDayWithSentiment(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		name     string
		sessions []sess
		want     string
	}{
		{"older positive day, newest negative day", []sess{
			{at: "2026-03-08T12:00:00Z", secs: 60, score: "0.9"},
			{at: "2026-03-10T12:00:00Z", secs: 60, score: "0.2"},
		}, "negative"},
		{"older negative day, newest positive day", []sess{
			{at: "2026-03-08T12:00:00Z", secs: 60, score: "0.2"},
			{at: "2026-03-10T12:00:00Z", secs: 60, score: "0.9"},
		}, "positive"},
		{"today empty falls back to the previous day with sessions", []sess{
			{at: "2026-03-08T12:00:00Z", secs: 60, score: "0.2"},
			{at: "2026-03-09T12:00:00Z", secs: 60, score: "0.8"},
		}, "positive"},
		{"the newest day's mean, not its last session", []sess{
			{at: "2026-03-09T12:00:00Z", secs: 60, score: "0.9"},
			{at: "2026-03-10T08:00:00Z", secs: 60, score: "0.9"},
			{at: "2026-03-10T09:00:00Z", secs: 60, score: "0.1"},
		}, "neutral"},
		{"a day before the window does not count", []sess{
			{at: "2026-03-03T12:00:00Z", secs: 60, score: "0.9"},
		}, "neutral"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			id := addUser(t, pool, fmt.Sprintf("trend-%d", i), c.sessions...)

			if got := windowAt(t, pool, id, day); got.Tone != c.want {
				t.Errorf("current_tone = %s (daily_sentiment %q), want %s", got.Tone, got.Sentiment, c.want)
			}
		})
	}
}

func TestRollupWindowIsTodayAndSixDaysBefore(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		at   string
		want string // daily_activity, oldest day first
	}{
		{"2026-03-03T12:00:00Z", "......."}, // 7 days before today
		{"2026-03-03T23:59:59Z", "......."},
		{"2026-03-04T00:00:00Z", "x......"}, // 00:00:00 UTC of today-6
		{"2026-03-07T12:00:00Z", "...x..."},
		{"2026-03-10T23:59:59Z", "......x"},
		{"2026-03-11T00:00:00Z", "......."}, // tomorrow
	}
	for i, c := range cases {
		t.Run(c.at, func(t *testing.T) {
			t.Parallel()
			id := addUser(t, pool, fmt.Sprintf("window-%d", i), sess{at: c.at, secs: 60, score: "0.5"})

			got := windowAt(t, pool, id, day)
			if got.WindowEnd != day {
				t.Errorf("window_end = %s, want %s", got.WindowEnd, day)
			}
			if !slices.Equal(got.Activity, activity(c.want)) {
				t.Errorf("daily_activity = %v, want %v (%s)", got.Activity, activity(c.want), c.want)
			}
			if outside := c.want == "......."; outside != (got.LastSession == nil) {
				t.Errorf("last_session_at = %s, want null exactly when the session is outside the window", fmtTime(got.LastSession))
			}
		})
	}
}

func TestRollupDayIsTheUTCDay(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		at   string
		want string
	}{
		{"2026-03-10T01:00:00+02:00", ".....x."}, // 2026-03-09 23:00 UTC
		{"2026-03-09T22:30:00-05:00", "......x"}, // 2026-03-10 03:30 UTC
		{"2026-03-04T01:00:00+02:00", "......."}, // 2026-03-03 23:00 UTC, outside
		{"2026-03-10T23:30:00-01:00", "......."}, // 2026-03-11 00:30 UTC, tomorrow
	}
	// The connection's TimeZone must not move a session to another day.
	for z, zone := range []string{"UTC", "Pacific/Kiritimati", "America/Los_Angeles"} {
		for i, c := range cases {
			t.Run(zone+"/"+c.at, func(t *testing.T) {
				t.Parallel()
				id := addUser(t, pool, fmt.Sprintf("utc-%d-%d", z, i), sess{at: c.at, secs: 60, score: "0.5"})

				tx, err := pool.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(t.Context())
				if _, err := tx.Exec(t.Context(), "select set_config('timezone', $1, true)", zone); err != nil {
					t.Fatal(err)
				}
				got := windowAt(t, tx, id, day)
				if !slices.Equal(got.Activity, activity(c.want)) {
					t.Errorf("daily_activity = %v, want %v (%s)", got.Activity, activity(c.want), c.want)
				}
			})
		}
	}
}

func TestRollupLastSessionIsEndOfLatestStarted(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		name     string
		sessions []sess
		want     string
	}{
		{"the latest-started one even when an earlier one ends later", []sess{
			{at: "2026-03-10T08:00:00Z", secs: 18000, score: "0.5"}, // ends 13:00
			{at: "2026-03-10T10:00:00Z", secs: 60, score: "0.5"},    // ends 10:01
		}, "2026-03-10T10:01:00Z"},
		{"its end may be tomorrow", []sess{
			{at: "2026-03-10T23:30:00Z", secs: 3600, score: "0.5"},
		}, "2026-03-11T00:30:00Z"},
		{"a zero-second session ends when it starts", []sess{
			{at: "2026-03-09T12:00:00Z", secs: 0, score: "0.5"},
		}, "2026-03-09T12:00:00Z"},
		{"sessions outside the window do not count", []sess{
			{at: "2026-03-03T12:00:00Z", secs: 60, score: "0.5"},
			{at: "2026-03-05T12:00:00Z", secs: 60, score: "0.5"},
			{at: "2026-03-11T01:00:00Z", secs: 60, score: "0.5"},
		}, "2026-03-05T12:01:00Z"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			id := addUser(t, pool, fmt.Sprintf("last-%d", i), c.sessions...)

			got := windowAt(t, pool, id, day)
			if want := timeOf(t, c.want); !equalTime(got.LastSession, want) {
				t.Errorf("last_session_at = %s, want %s", fmtTime(got.LastSession), fmtTime(want))
			}
		})
	}
}

func TestRollupAverageOfNonZeroDays(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		name string
		secs [7]int32 // seconds per day, oldest first; 0 = no session
		want int
	}{
		{"mean 1.5 rounds up to 2", [7]int32{60, 120}, 2},
		{"mean 1.33 rounds down to 1", [7]int32{60, 60, 120}, 1},
		{"mean 1.67 rounds up to 2", [7]int32{60, 120, 120}, 2},
		{"a 0-minute day is left out", [7]int32{20, 0, 0, 0, 0, 0, 180}, 3},
		{"only 0-minute days give 0", [7]int32{0, 0, 0, 20, 0, 0, 20}, 0},
		{"no sessions give 0", [7]int32{}, 0},
		{"every day", [7]int32{600, 600, 600, 600, 600, 600, 600}, 10},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var sessions []sess
			for d, secs := range c.secs {
				if secs > 0 {
					sessions = append(sessions, sess{at: fmt.Sprintf("2026-03-%02dT12:00:00Z", 4+d), secs: secs, score: "0.5"})
				}
			}
			id := addUser(t, pool, fmt.Sprintf("avg-%d", i), sessions...)

			if got := windowAt(t, pool, id, day); got.AvgMinutes != c.want {
				t.Errorf("avg_duration_minutes for daily_durations %v = %d, want %d", got.Durations, got.AvgMinutes, c.want)
			}
		})
	}
}

func TestRollupStreakCountsBackFromToday(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	cases := []struct {
		pattern string // active days, oldest first
		want    int
	}{
		{"...x.xx", 2},
		{"xxxxxx.", 0},
		{"......x", 1},
		{"x......", 0},
		{"xxxxxxx", 7},
		{".xxxxxx", 6},
		{".......", 0},
	}
	for i, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			t.Parallel()
			var sessions []sess
			for d, ch := range c.pattern {
				if ch == 'x' {
					sessions = append(sessions, sess{at: fmt.Sprintf("2026-03-%02dT12:00:00Z", 4+d), secs: 60, score: "0.5"})
				}
			}
			ext := fmt.Sprintf("streak-%d", i)
			addUser(t, pool, ext, sessions...)

			got := dashboardAt(t, pool, ext, day)
			if !slices.Equal(got.Activity, activity(c.pattern)) {
				t.Fatalf("daily_activity = %v, want %v (%s)", got.Activity, activity(c.pattern), c.pattern)
			}
			if got.Streak != c.want {
				t.Errorf("streak_days of %s = %d, want %d", c.pattern, got.Streak, c.want)
			}
		})
	}
}

func TestDashboardEmptyUser(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	got := dashboardAt(t, pool, "nobody-yet", day)
	want := rollup{
		WindowEnd:  day,
		Streak:     0,
		Activity:   activity("......."),
		Durations:  []int{0, 0, 0, 0, 0, 0, 0},
		Sentiment:  "- - - - - - -",
		AvgMinutes: 0,
		Tone:       "neutral",
	}
	if d := got.diff(want); d != "" {
		t.Errorf("empty state: %s", d)
	}

	// Reads never write: the unknown user stays unknown.
	var users, rollups int
	if err := pool.QueryRow(t.Context(),
		`select (select count(*) from users), (select count(*) from dashboard_rollups)`).Scan(&users, &rollups); err != nil {
		t.Fatal(err)
	}
	if users != 0 || rollups != 0 {
		t.Errorf("after reading an unknown user: %d users, %d rollups; want none", users, rollups)
	}
}
