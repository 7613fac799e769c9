package main

import (
	"math"
	"reflect"
	"testing"
	"time"

	"coco/sql/store"
)

func TestDemoSessionsAreReproducibleAndEnded(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 10, 22, 12, 30, 0, 0, time.UTC)
	week := demoSessions("demo-user", now)

	if again := demoSessions("demo-user", now); !reflect.DeepEqual(week, again) {
		t.Fatalf("a second call gave other sessions:\n%v\n%v\nwant the same", week, again)
	}
	// A rerun the next day reproduces the six days the weeks share, so it
	// reports them as duplicates rather than conflicts.
	byID := map[string]store.Session{}
	for _, s := range demoSessions("demo-user", now.Add(24*time.Hour)) {
		byID[s.SessionID] = s
	}
	oldest := now.Truncate(24*time.Hour).AddDate(0, 0, -6)
	early := demoSessionID("demo-user", now.Truncate(24*time.Hour), 0)
	for _, s := range week {
		if s.StartedAt.Before(oldest.AddDate(0, 0, 1)) || s.SessionID == early {
			continue // the day that left the window; today's early session, made only while it had none
		}
		if later, ok := byID[s.SessionID]; !ok || later != s {
			t.Errorf("session %s is %+v the next day, want %+v", s.SessionID, later, s)
		}
	}

	days := map[string]int{}
	for _, s := range week {
		day := s.StartedAt.Format(time.DateOnly)
		days[day]++
		switch {
		case s.StartedAt.Before(oldest) || s.StartedAt.Add(time.Duration(s.DurationSeconds)*time.Second).After(now):
			t.Errorf("session %s runs %v for %ds, want it within %v..%v", s.SessionID, s.StartedAt, s.DurationSeconds, oldest, now)
		case s.SessionID == early:
		case s.DurationSeconds < 300 || s.DurationSeconds > 2400:
			t.Errorf("session %s lasts %ds, want 300..2400", s.SessionID, s.DurationSeconds)
		case s.SentimentScore < 0.3 || s.SentimentScore > 0.9 || math.Abs(s.SentimentScore*100-math.Round(s.SentimentScore*100)) > 1e-9:
			t.Errorf("session %s has sentiment %v, want 0.30..0.90 with two decimals", s.SessionID, s.SentimentScore)
		case s.SessionID != demoSessionID("demo-user", s.StartedAt.Truncate(24*time.Hour), 1) &&
			s.SessionID != demoSessionID("demo-user", s.StartedAt.Truncate(24*time.Hour), 2) &&
			s.SessionID != demoSessionID("demo-user", s.StartedAt.Truncate(24*time.Hour), 3):
			t.Errorf("session id %s, want demo-demo-user-%s-<1..3>", s.SessionID, day)
		}
	}
	if len(days) < 4 {
		t.Errorf("sessions on %d days (%v), want most of the week active", len(days), days)
	}
	for day, n := range days {
		if n > 3 {
			t.Errorf("%d sessions on %s, want at most 3", n, day)
		}
	}
}

// At any hour, today has a session that has ended: make run's demo shows a
// streak, also before the day's first slot.
func TestDemoWeekHasTodayAtEveryHour(t *testing.T) {
	t.Parallel()
	day := time.Date(2025, 10, 22, 0, 0, 0, 0, time.UTC)
	for _, user := range []string{"demo-user", "grandma-rose", "kid-1"} {
		for at := 30 * time.Second; at < 24*time.Hour; at += 17 * time.Minute {
			now := day.Add(at)
			today := 0
			for _, s := range demoSessions(user, now) {
				if !s.StartedAt.Before(day) {
					today++
					if end := s.StartedAt.Add(time.Duration(s.DurationSeconds) * time.Second); end.After(now) {
						t.Fatalf("%s at %s: session %s ends at %s, in the future", user, now, s.SessionID, end)
					}
				}
			}
			if today == 0 {
				t.Fatalf("%s at %s: no session today, so the demo's streak is 0", user, now.Format(time.TimeOnly))
			}
		}
	}
}
