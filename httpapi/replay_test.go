package httpapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// These tests send many requests at once over real connections, as the
// device (replaying what it missed) and polling dashboards do, and then
// check what the database holds. Their random plans are seeded; the seed is
// logged so a failure can be replayed.

// expectRollupsFresh fails t unless coco.rollup_drift is empty: every stored
// rollup equals a fresh recompute, for its own window, so a test that
// straddles midnight UTC does not fail for a rollup a read would move on.
func expectRollupsFresh(t *testing.T, ts *testServer) {
	t.Helper()
	rows, err := ts.pool.Query(t.Context(), `select external_id from coco.rollup_drift order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("stored rollups of %q differ from a fresh recompute; want every rollup to count every committed session", stale)
	}
}

// decodeDashboard checks that resp is a 200 snapshot with seven-day arrays
// and returns it decoded.
func decodeDashboard(t *testing.T, resp response) dashboardBody {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("dashboard: %s, want 200 and a snapshot", resp)
	}
	var b dashboardBody
	if err := json.Unmarshal([]byte(resp.body), &b); err != nil {
		t.Fatalf("dashboard body %s: %v", resp.body, err)
	}
	if len(b.Streak.DailyActivity) != WindowDays || len(b.AvgDuration.DailyDurations) != WindowDays || len(b.ToneTrend.DailySentiment) != WindowDays {
		t.Fatalf("dashboard body %s: want 7-day arrays", resp.body)
	}
	return b
}

// expectDashboardIsTheRollup fails t unless the snapshot served for user
// carries exactly what the SQL engine computes from the stored sessions for
// the window stored with it (an unknown user's: the empty state). Go
// compares; it does not recompute.
func expectDashboardIsTheRollup(t *testing.T, ts *testServer, user string, got dashboardBody) {
	t.Helper()
	var (
		want     dashboardBody
		lastEnd  *time.Time
		activity []bool
	)
	err := ts.pool.QueryRow(t.Context(), `
		select w.daily_activity, w.daily_durations, w.daily_sentiment::float8[], w.last_session_at,
		       w.avg_duration_minutes, w.current_tone, coco.streak(w.daily_activity)
		  from (select $1::text as external_id) asked
		  left join users u using (external_id)
		  left join dashboard_rollups r on r.user_id = u.id
		 cross join lateral coco.rollup_window(u.id, coalesce(r.window_end, coco.today())) w`, user).Scan(
		&activity, &want.AvgDuration.DailyDurations, &want.ToneTrend.DailySentiment, &lastEnd,
		&want.AvgDuration.Minutes, &want.ToneTrend.Current, &want.Streak.Days)
	if err != nil {
		t.Fatalf("rollup of %s: %v", user, err)
	}
	want.Streak.DailyActivity = activity
	if lastEnd != nil {
		end := lastEnd.UTC().Format(time.RFC3339Nano)
		want.LastSession.Timestamp = &end
	}

	if !slices.Equal(got.Streak.DailyActivity, want.Streak.DailyActivity) ||
		!slices.Equal(got.AvgDuration.DailyDurations, want.AvgDuration.DailyDurations) ||
		got.AvgDuration.Minutes != want.AvgDuration.Minutes ||
		got.Streak.Days != want.Streak.Days ||
		got.ToneTrend.Current != want.ToneTrend.Current ||
		!slices.EqualFunc(got.ToneTrend.DailySentiment, want.ToneTrend.DailySentiment, func(a, b *float64) bool {
			return (a == nil) == (b == nil) && (a == nil || *a == *b)
		}) {
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		t.Fatalf("dashboard of %s:\n got %s\nwant %s (from coco.rollup_window; lastUpdated aside)", user, gotJSON, wantJSON)
	}
	switch {
	case lastEnd == nil && got.LastSession.Timestamp != nil:
		t.Fatalf("dashboard of %s: lastSession %s, want null", user, *got.LastSession.Timestamp)
	case lastEnd != nil && got.LastSession.Timestamp == nil:
		t.Fatalf("dashboard of %s: lastSession null, want %s", user, lastEnd.UTC().Format(time.RFC3339Nano))
	case lastEnd != nil:
		at, err := time.Parse(time.RFC3339Nano, *got.LastSession.Timestamp)
		if err != nil || !at.Equal(*lastEnd) {
			t.Fatalf("dashboard of %s: lastSession %s, want %s", user, *got.LastSession.Timestamp, lastEnd.UTC().Format(time.RFC3339Nano))
		}
	}
}

// problems collects what goroutines found wrong, for the test goroutine to
// report: only it may stop the test.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) > 0 {
		t.Fatalf("%d requests went wrong, want none:\n%s", len(p.list), strings.Join(p.list, "\n"))
	}
}

// randomStart is an instant in the six days before now, in milliseconds:
// always inside the window that ends today.
func randomStart(rng *rand.Rand, now time.Time) time.Time {
	return now.Add(-time.Duration(rng.Int64N(int64(6 * 24 * time.Hour)))).Truncate(time.Millisecond)
}

func newSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random plan seed %d", seed)
	return seed
}

// Writers on many users and polling dashboards at the same time: nothing
// fails or times out, and afterwards every rollup counts every session.
func TestConcurrentWritersAndReaders(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 16)
	live := ts.listen(t)
	const (
		users             = 20
		writers           = 8
		sessionsPerWriter = 10
		readers           = 4
		readsPerReader    = 25
	)
	userID := func(i int) string { return fmt.Sprintf("u%02d", i) }
	seed := newSeed(t)
	now := time.Now()

	var (
		bad   problems
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for w := range writers {
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			<-start
			for i := range sessionsPerWriter {
				payload := summaryJSON(fmt.Sprintf("w%d-%02d", w, i), userID(rng.IntN(users)),
					randomStart(rng, now), rng.IntN(7201), float64(rng.IntN(101))/100)
				resp, err := live.ingest(payload)
				if err != nil || resp.status != http.StatusOK || resp.body != `{"status":"ok"}` {
					bad.add("ingest %s: %v %v, want 200 {\"status\":\"ok\"}", payload, resp, err)
				}
			}
		})
	}
	for r := range readers {
		rng := rand.New(rand.NewPCG(seed, uint64(writers+r)))
		wg.Go(func() {
			<-start
			etags := map[string]string{} // as a polling browser keeps them
			for range readsPerReader {
				user := userID(rng.IntN(users))
				var headers []string
				if tag := etags[user]; tag != "" {
					headers = []string{"If-None-Match", tag}
				}
				resp, err := live.dashboard(user, adminToken, headers...)
				switch {
				case err != nil:
					bad.add("dashboard %s: %v", user, err)
				case resp.status == http.StatusNotModified && headers != nil:
				case resp.status == http.StatusOK && strings.HasPrefix(resp.body, `{"lastSession":`) && resp.header.Get("ETag") != "":
					etags[user] = resp.header.Get("ETag")
				default:
					bad.add("dashboard %s: %s, want 200 with a snapshot and an ETag, or 304", user, resp)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	bad.check(t)

	var sessions int
	if err := ts.pool.QueryRow(t.Context(), `select count(*) from sessions`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != writers*sessionsPerWriter {
		t.Fatalf("%d sessions stored, want the %d sent", sessions, writers*sessionsPerWriter)
	}
	expectRollupsFresh(t, ts)
	for i := range users {
		resp, err := live.dashboard(userID(i), adminToken)
		if err != nil {
			t.Fatal(err)
		}
		expectDashboardIsTheRollup(t, ts, userID(i), decodeDashboard(t, resp))
	}
}

// A device replaying its backlog sends some sessions several times at once
// (in either offset) and, when buggy, reuses a session_id with other values.
// Each request's answer is fixed by the plan, whatever order they arrive in,
// and the table ends up holding exactly the first version of each session.
func TestReplayStorm(t *testing.T) {
	t.Parallel()
	ts := setupWide(t, 16)
	// Copies of one session wait for each other's user lock; this test is
	// about what is stored, not how long that takes on a loaded machine.
	ts.cfg.DBTimeout = time.Minute
	live := ts.listen(t)
	seed := newSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	now := time.Now()
	plus2 := time.FixedZone("", 2*60*60)

	const (
		ok        = `{"status":"ok"}`
		duplicate = `{"status":"duplicate"}`
		conflict  = `{"status":"conflict","detail":"session_id is already stored with different values: `
	)
	type session struct {
		id, user string
		at       time.Time
		duration int
		score    float64
	}
	type request struct {
		sessionID, payload string
	}
	summary := func(s session) string { return summaryJSON(s.id, s.user, s.at, s.duration, s.score) }
	// A copy is the same summary, the instant written in UTC or in +02:00.
	copyOf := func(s session) string {
		if rng.IntN(2) == 0 {
			s.at = s.at.In(plus2)
		}
		return summary(s)
	}
	// Each conflict changes one thing and names it; the last one also moves
	// the instant to another offset, which alone is not a change.
	conflicts := []struct {
		fields string
		change func(s session) session
	}{
		{"duration_seconds", func(s session) session { s.duration = (s.duration + 1) % 7201; return s }},
		{"sentiment_score", func(s session) session { s.score = float64((int(s.score*100+0.5)+1)%101) / 100; return s }},
		{"user_external_id", func(s session) session { s.user = "mallory"; return s }},
		{"started_at", func(s session) session { s.at = s.at.Add(time.Millisecond); return s }},
		{"duration_seconds", func(s session) session { s.at = s.at.In(plus2); s.duration = (s.duration + 60) % 7201; return s }},
	}

	// Racing sessions are first sent in the storm, 1 to 3 identical copies:
	// one gets ok, the others duplicate. Settled sessions are stored before
	// the storm, which then carries their resends and conflicting versions
	// (a conflict racing its original would make the outcome order-dependent).
	const racing, settled = 20, 20
	var (
		originals []session
		before    []request
		storm     []request
		want      = map[string]map[string]int{} // session_id -> answer -> how many
	)
	for i := range racing + settled {
		s := session{fmt.Sprintf("storm-%02d", i), fmt.Sprintf("u%d", rng.IntN(5)), randomStart(rng, now), rng.IntN(7201), float64(rng.IntN(101)) / 100}
		originals = append(originals, s)
		want[s.id] = map[string]int{}
		copies := 1 + rng.IntN(3)
		if i < racing {
			want[s.id][ok] = 1
		} else {
			before = append(before, request{s.id, copyOf(s)})
			want[s.id][ok] = 1
			copies--
			kinds := []int{i % len(conflicts)}
			if rng.IntN(2) == 0 {
				kinds = append(kinds, rng.IntN(len(conflicts)))
			}
			for _, k := range kinds {
				storm = append(storm, request{s.id, summary(conflicts[k].change(s))})
				want[s.id][conflict+conflicts[k].fields+`"}`]++
			}
		}
		for c := range copies {
			storm = append(storm, request{s.id, copyOf(s)})
			if i >= racing || c > 0 {
				want[s.id][duplicate]++
			}
		}
	}
	rng.Shuffle(len(storm), func(i, j int) { storm[i], storm[j] = storm[j], storm[i] })

	var (
		mu  sync.Mutex
		got = map[string]map[string]int{}
		bad problems
	)
	send := func(requests []request) {
		const clients = 16
		queue := make(chan request)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for r := range queue {
					resp, err := live.ingest(r.payload)
					if err != nil {
						bad.add("ingest %s: %v", r.payload, err)
						continue
					}
					answer := resp.body
					if strings.HasPrefix(answer, conflict) && resp.status != http.StatusConflict ||
						!strings.HasPrefix(answer, conflict) && resp.status != http.StatusOK {
						answer = resp.String() // a wrong status never matches the plan
					}
					mu.Lock()
					if got[r.sessionID] == nil {
						got[r.sessionID] = map[string]int{}
					}
					got[r.sessionID][answer]++
					mu.Unlock()
				}
			})
		}
		for _, r := range requests {
			queue <- r
		}
		close(queue)
		wg.Wait()
	}
	send(before)
	send(storm)
	bad.check(t)

	var sent, oks, dups, conflicts409 int
	for id, answers := range want {
		if fmt.Sprint(got[id]) != fmt.Sprint(answers) {
			t.Errorf("session %s got answers %v, want %v", id, got[id], answers)
		}
		for answer, n := range answers {
			sent += n
			switch {
			case answer == ok:
				oks += n
			case answer == duplicate:
				dups += n
			default:
				conflicts409 += n
			}
		}
	}
	t.Logf("sent %d requests: %d ok, %d duplicate, %d conflict", sent, oks, dups, conflicts409)
	if t.Failed() {
		t.FailNow()
	}

	rows, err := ts.pool.Query(t.Context(), `
		select s.session_id, u.external_id, s.started_at, s.duration_seconds, s.sentiment_score::float8
		  from sessions s join users u on u.id = s.user_id order by s.session_id`)
	if err != nil {
		t.Fatal(err)
	}
	var stored []session
	for rows.Next() {
		var s session
		if err := rows.Scan(&s.id, &s.user, &s.at, &s.duration, &s.score); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(originals) {
		t.Fatalf("%d sessions stored, want the %d originals", len(stored), len(originals))
	}
	for i, o := range originals { // both sorted by session_id
		s := stored[i]
		if s.id != o.id || s.user != o.user || !s.at.Equal(o.at) || s.duration != o.duration || s.score != o.score {
			t.Errorf("stored %+v, want the original %+v", s, o)
		}
	}

	var strangers int
	if err := ts.pool.QueryRow(t.Context(), `select count(*) from users where external_id = 'mallory'`).Scan(&strangers); err != nil {
		t.Fatal(err)
	}
	if strangers != 0 {
		t.Errorf("a conflicting resend created user mallory; want nothing stored for a conflict")
	}
	expectRollupsFresh(t, ts)
}
