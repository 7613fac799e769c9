package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/store"
)

// target is what one scenario talks to: coco over HTTP, or the same SQL
// functions directly through a pgx pool of coco's size.
type target struct {
	host  string // coco's host:port
	wire  *wire
	store *store.Store
}

var sessionSeq atomic.Int64

// nextSession is a new, unique session for one of users users named prefix-N,
// started in the last six days so every ingest lands in a rollup window.
func nextSession(prefix string, users int) store.Session {
	n := sessionSeq.Add(1)
	return store.Session{
		SessionID:       fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n),
		UserExternalID:  fmt.Sprintf("%s-%d", prefix, n%int64(users)),
		StartedAt:       time.Now().Add(-time.Duration(n%(6*24*60)) * time.Minute).UTC().Truncate(time.Second),
		DurationSeconds: 60 + int(n%2400),
		SentimentScore:  float64(n%101) / 100,
	}
}

func (t target) ingestHTTP(prefix string, users int) request {
	return func(_ context.Context, client int) error {
		_, err := t.expect(client, t.ingestRequest(nextSession(prefix, users)), http.StatusOK)
		return err
	}
}

// ingestRequest is the HTTP request that posts s.
func (t target) ingestRequest(s store.Session) string {
	zone := ""
	if s.TimeZone != "" {
		zone = fmt.Sprintf(`,"time_zone":%q`, s.TimeZone)
	}
	body := fmt.Sprintf(`{"session_id":%q,"user_external_id":%q,"started_at":%q,"duration_seconds":%d,"sentiment_score":%g%s}`,
		s.SessionID, s.UserExternalID, s.StartedAt.Format(time.RFC3339), s.DurationSeconds, s.SentimentScore, zone)
	return fmt.Sprintf("POST /internal/ingest/session_summary HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", t.host, ingestToken, len(body), body)
}

func (t target) ingestSQL(prefix string, users int) request {
	return func(ctx context.Context, _ int) error {
		status, err := t.store.Ingest(ctx, nextSession(prefix, users))
		if err == nil && status != store.Stored {
			err = fmt.Errorf("ingest: %s", status)
		}
		return err
	}
}

func (t target) dashboardHTTP(users []string, etags map[string]string) request {
	want := http.StatusOK
	if etags != nil {
		want = http.StatusNotModified
	}
	return func(_ context.Context, client int) error {
		user := users[rand.IntN(len(users))]
		_, err := t.expect(client, t.dashboardRequest(user, etags[user]), want)
		return err
	}
}

func (t target) dashboardRequest(user, etag string) string {
	inm := ""
	if etag != "" {
		inm = "If-None-Match: " + etag + "\r\n"
	}
	return fmt.Sprintf("GET /api/dashboard/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s\r\n",
		user, t.host, dashboardToken, inm)
}

func (t target) dashboardSQL(users []string) request {
	return func(ctx context.Context, _ int) error {
		_, err := t.store.Dashboard(ctx, users[rand.IntN(len(users))], time.Now())
		return err
	}
}

// expect sends req on client's connection and checks the status.
func (t target) expect(client int, req string, status int) (reply, error) {
	rep, err := t.wire.roundTrip(client, []byte(req))
	if err == nil && rep.status != status {
		err = fmt.Errorf("%.40q: status %d, want %d", req, rep.status, status)
	}
	return rep, err
}

// etagsOf reads each user's dashboard once and keeps its ETag.
func (t target) etagsOf(users []string) (map[string]string, error) {
	etags := make(map[string]string, len(users))
	for _, u := range users {
		rep, err := t.expect(0, t.dashboardRequest(u, ""), http.StatusOK)
		if err != nil {
			return nil, err
		}
		etags[u] = rep.etag
	}
	return etags, nil
}

// seedWeek gives each user a realistic week: one to three sessions a day.
func seedWeek(ctx context.Context, st *store.Store, users []string) error {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i, u := range users {
		for day := range 7 {
			for k := range 1 + (i+day)%3 {
				start := today.AddDate(0, 0, -day).Add(time.Duration(8+3*k) * time.Hour)
				if start.After(time.Now()) {
					start = time.Now().Add(-time.Duration(k+1) * time.Minute).Truncate(time.Second)
				}
				_, err := st.Ingest(ctx, store.Session{
					SessionID:       fmt.Sprintf("week-%s-%d-%d", u, day, k),
					UserExternalID:  u,
					StartedAt:       start,
					DurationSeconds: 300 + 60*((i+k)%30),
					SentimentScore:  float64(30+(i*7+day*13+k)%70) / 100,
				})
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// seedWriters creates the writers the ingest scenarios spread sessions over,
// writer-0 to writer-(writers-1), with a session on each of the last seven
// days, in two plain statements that the first release's schema accepts
// too (the trigger on sessions computes their rollups).
func seedWriters(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
		insert into users (external_id) select 'writer-' || g from generate_series(0, $1::int - 1) g;`, writers)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `
		insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
		select 'seed-' || u.external_id || '-' || k, u.id,
		       date_trunc('hour', now()) - k * interval '1 day' + interval '30 minutes',
		       300 + 60 * (k * 7 % 30), (30 + k * 9 % 70) / 100.0
		from users u cross join generate_series(1, 7) k
		where u.external_id like 'writer-%'`)
	return err
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
