package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"coco/httpapi"
	"coco/sql/store"
)

func runSeedDemo(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("seed-demo", "[-user ID] [-reset]", dbVarsHelp+`
Stores plausible sessions for the last seven days (UTC, today included, none
in the future) through the same ingest function the HTTP API calls, so the
trigger updates the rollup. The sessions follow from the user id and the day
alone, with ids demo-<user>-<yyyy-mm-dd>-<n>: running it again stores
nothing new and reports duplicates, so it is safe to repeat.
`)
	user := fs.String("user", "demo-user", "external `id` of the user to seed (map a dashboard token to it)")
	reset := fs.Bool("reset", false, "delete every session of the user first (all of them, not only demo ones)")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	if *user == "*" {
		fmt.Fprintf(c.stderr, "coco seed-demo: -user must be one external user id, not *\n")
		return exitUsage
	}
	if err := httpapi.ValidExternalID(*user); err != nil {
		fmt.Fprintf(c.stderr, "coco seed-demo: -user must be an external user id: %v\n", err)
		return exitUsage
	}
	if n := len(demoSessionID(*user, time.Time{}, 3)); n > 128 {
		fmt.Fprintf(c.stderr, "coco seed-demo: -user is too long for the demo session ids (%d characters, at most 128)\n", n)
		return exitUsage
	}
	pool, code := c.connect(ctx, "seed-demo")
	if pool == nil {
		return code
	}
	defer pool.Close()
	st := store.NewStore(pool)

	if *reset {
		n, err := st.DeleteSessions(ctx, *user)
		if err != nil {
			return c.fail("seed-demo", err)
		}
		fmt.Fprintf(c.stdout, "deleted %d sessions of %s\n", n, *user)
	}
	now := time.Now().UTC()
	var stored, duplicate, conflict int
	for _, s := range demoSessions(*user, now) {
		status, err := st.Ingest(ctx, s)
		var conflictErr *store.ConflictError
		switch {
		case errors.As(err, &conflictErr):
			conflict++
		case err != nil:
			return c.fail("seed-demo", fmt.Errorf("store %s: %w", s.SessionID, err))
		case status == store.Duplicate:
			duplicate++
		default:
			stored++
		}
	}
	first := now.AddDate(0, 0, -6).Format(time.DateOnly)
	fmt.Fprintf(c.stdout, "seeded %s for %s to %s (UTC): %d stored, %d duplicate\n",
		*user, first, now.Format(time.DateOnly), stored, duplicate)
	if conflict > 0 {
		return c.fail("seed-demo", fmt.Errorf("%d demo session ids are stored with other values; run again with -reset", conflict))
	}
	return exitOK
}

// demoSessions returns a plausible week for user ending on now's UTC day:
// most days 1 to 3 sessions of 5 to 40 minutes, sentiments 0.30 to 0.90.
// A day's sessions depend only on the user and the date, so a rerun (even
// on a later day) reproduces the ones it stored before; sessions that have
// not ended by now are left out. Today always has one that has ended, early
// in the morning too, so the demo's streak is never 0.
func demoSessions(user string, now time.Time) []store.Session {
	today := now.UTC().Truncate(24 * time.Hour)
	var out []store.Session
	for back := 6; back >= 0; back-- {
		day := today.AddDate(0, 0, -back)
		h := fnv.New64a()
		h.Write([]byte(user))
		rng := rand.New(rand.NewPCG(h.Sum64(), uint64(day.Unix())))

		n := 1 + rng.IntN(3)
		if rng.IntN(6) == 0 && back > 0 {
			n = 0 // a day off, never today
		}
		// Sessions fall between 07:00 and 22:00, one per slot, so they never overlap.
		slot := 15 * time.Hour / time.Duration(max(n, 1))
		ended := 0
		for i := range n {
			duration := time.Duration(300+rng.IntN(2101)) * time.Second
			offset := time.Duration(rng.Int64N(int64(slot - duration))).Truncate(time.Second)
			started := day.Add(7*time.Hour + time.Duration(i)*slot + offset)
			sentiment := float64(30+rng.IntN(61)) / 100
			if started.Add(duration).After(now) {
				continue
			}
			ended++
			out = append(out, demoSession(user, day, i+1, started, duration, sentiment))
		}
		if back == 0 && ended == 0 && now.Sub(today) >= 30*time.Second {
			// Before today's first slot: a short session just after
			// midnight, the same at every rerun.
			out = append(out, demoSession(user, day, 0, today, 30*time.Second, 0.72))
		}
	}
	return out
}

func demoSession(user string, day time.Time, n int, started time.Time, duration time.Duration, sentiment float64) store.Session {
	return store.Session{
		SessionID:       demoSessionID(user, day, n),
		UserExternalID:  user,
		StartedAt:       started,
		DurationSeconds: int(duration / time.Second),
		SentimentScore:  sentiment,
	}
}

func demoSessionID(user string, day time.Time, n int) string {
	return fmt.Sprintf("demo-%s-%s-%d", user, day.Format(time.DateOnly), n)
}
