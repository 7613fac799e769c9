package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	cocosql "coco/sql"
)

// target is what one scenario talks to: coco over HTTP, or the same SQL
// functions directly through a pgx pool of coco's size.
type target struct {
	base   string // coco's http://host:port
	client *http.Client
	store  *cocosql.Store
}

var sessionSeq atomic.Int64

// nextSession is a new, unique session for one of users users named prefix-N,
// started in the last six days so every ingest lands in a rollup window.
func nextSession(prefix string, users int) cocosql.Session {
	n := sessionSeq.Add(1)
	return cocosql.Session{
		SessionID:       fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n),
		UserExternalID:  fmt.Sprintf("%s-%d", prefix, n%int64(users)),
		StartedAt:       time.Now().Add(-time.Duration(n%(6*24*60)) * time.Minute).UTC().Truncate(time.Second),
		DurationSeconds: 60 + int(n%2400),
		SentimentScore:  float64(n%101) / 100,
	}
}

func (t target) ingestHTTP(prefix string, users int) request {
	return func(ctx context.Context, _ int) error {
		s := nextSession(prefix, users)
		body := fmt.Sprintf(`{"session_id":%q,"user_external_id":%q,"started_at":%q,"duration_seconds":%d,"sentiment_score":%g}`,
			s.SessionID, s.UserExternalID, s.StartedAt.Format(time.RFC3339), s.DurationSeconds, s.SentimentScore)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/internal/ingest/session_summary", bytes.NewBufferString(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+ingestToken)
		req.Header.Set("Content-Type", "application/json")
		return t.expect(req, http.StatusOK, nil)
	}
}

func (t target) ingestSQL(prefix string, users int) request {
	return func(ctx context.Context, _ int) error {
		status, err := t.store.Ingest(ctx, nextSession(prefix, users))
		if err == nil && status != cocosql.Stored {
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
	return func(ctx context.Context, _ int) error {
		user := users[rand.IntN(len(users))]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/api/dashboard/"+user, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+dashboardToken)
		if etags != nil {
			req.Header.Set("If-None-Match", etags[user])
		}
		return t.expect(req, want, nil)
	}
}

func (t target) dashboardSQL(users []string) request {
	return func(ctx context.Context, _ int) error {
		_, err := t.store.Dashboard(ctx, users[rand.IntN(len(users))], time.Now())
		return err
	}
}

// expect sends req and checks the status; headers, when given, receives the
// response's headers.
func (t target) expect(req *http.Request, status int, headers *http.Header) error {
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: status %d, want %d", req.Method, req.URL.Path, resp.StatusCode, status)
	}
	if headers != nil {
		*headers = resp.Header
	}
	return nil
}

// etagsOf reads each user's dashboard once and keeps its ETag.
func (t target) etagsOf(ctx context.Context, users []string) (map[string]string, error) {
	etags := make(map[string]string, len(users))
	for _, u := range users {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/api/dashboard/"+u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+dashboardToken)
		var h http.Header
		if err := t.expect(req, http.StatusOK, &h); err != nil {
			return nil, err
		}
		etags[u] = h.Get("ETag")
	}
	return etags, nil
}

// seedWeek gives each user a realistic week: one to three sessions a day.
func seedWeek(ctx context.Context, store *cocosql.Store, users []string) error {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i, u := range users {
		for day := range 7 {
			for k := range 1 + (i+day)%3 {
				start := today.AddDate(0, 0, -day).Add(time.Duration(8+3*k) * time.Hour)
				if start.After(time.Now()) {
					start = time.Now().Add(-time.Duration(k+1) * time.Minute).Truncate(time.Second)
				}
				_, err := store.Ingest(ctx, cocosql.Session{
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
