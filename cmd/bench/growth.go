package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// growth measures ingest and read latency with little history, with o.big
// sessions stored, and for one user with 10 thousand sessions of history.
// The rollup only reads the seven-day window through the (user_id,
// started_at) index, so none of these should be much slower than the first.
func (b bench) growth(ctx context.Context, server, bin string, migrate func(context.Context, string) error) ([]Result, error) {
	d, err := deploy(ctx, server, bin, "coco_bench_growth", b.o.poolSize, migrate)
	if err != nil {
		return nil, err
	}
	defer d.close()
	t, pool := d.target, d.pool

	// Each case measures users whose windows start empty, so the sessions
	// the measurement itself ingests weigh the same in every case, and the
	// only difference is the history stored around them.
	progress("growth: storing 1 thousand sessions")
	if err := history(ctx, pool, "small", 100, 1000); err != nil {
		return nil, err
	}
	base8Ingest := b.measure(ctx, "1k: ingest http", 8, t.ingestHTTP("a", 1000))
	base8Read := b.measure(ctx, "1k: dashboard http", 8, t.dashboardHTTP(names("a", 1000), nil))
	base1Ingest := b.measure(ctx, "1k: ingest http, one user", 1, t.ingestHTTP("solo", 1))
	base1Read := b.measure(ctx, "1k: dashboard http, one user", 1, t.dashboardHTTP([]string{"solo-0"}, nil))

	progress("growth: storing %d sessions", b.o.big)
	if err := history(ctx, pool, "hist", 10_000, b.o.big); err != nil {
		return nil, err
	}
	label := fmt.Sprintf("%dk", b.o.big/1000)
	if b.o.big >= 1_000_000 {
		label = fmt.Sprintf("%dM", b.o.big/1_000_000)
	}
	bigIngest := b.measure(ctx, label+": ingest http", 8, t.ingestHTTP("b", 1000))
	bigRead := b.measure(ctx, label+": dashboard http", 8, t.dashboardHTTP(names("b", 1000), nil))

	progress("growth: storing 10 thousand sessions for one user")
	if err := history(ctx, pool, "heavy", 1, 10_000); err != nil {
		return nil, err
	}
	heavyIngest := b.measure(ctx, "10k-session user: ingest http", 1, t.ingestHTTP("heavy", 1))
	heavyRead := b.measure(ctx, "10k-session user: dashboard http", 1, t.dashboardHTTP([]string{"heavy-0"}, nil))

	for _, pair := range []struct{ r, base *Result }{
		{&bigIngest, &base8Ingest}, {&bigRead, &base8Read},
		{&heavyIngest, &base1Ingest}, {&heavyRead, &base1Read},
	} {
		versus(pair.r, *pair.base, pair.r.P50ms/pair.base.P50ms)
	}

	results := []Result{base8Ingest, base8Read, bigIngest, bigRead, base1Ingest, base1Read, heavyIngest, heavyRead}
	if b.o.revision != "" {
		return results, nil // a previous release may have no erasure
	}
	// Last, as it ends the heavy user: erasing 10 thousand sessions at once.
	progress("growth: erasing the 10k-session user")
	start := time.Now()
	req := fmt.Sprintf("DELETE /internal/users/heavy-0 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", t.host, ingestToken)
	if _, err := t.expect(0, req, http.StatusOK); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	erase := Result{Scenario: "10k-session user: erase http", Clients: 1, RPS: 1 / time.Since(start).Seconds(),
		P50ms: ms(time.Since(start)), P99ms: ms(time.Since(start))}
	return append(results, erase), nil
}

// history stores n sessions spread over users prefix-0 .. prefix-(users-1),
// over the two years before the window, in statements of at most 100
// thousand rows; the trigger recomputes each touched user once per statement.
func history(ctx context.Context, pool *pgxpool.Pool, prefix string, users, n int) error {
	if _, err := pool.Exec(ctx,
		`insert into users (external_id) select $1 || '-' || i from generate_series(0, $2 - 1) i
		 on conflict (external_id) do nothing`, prefix, users); err != nil {
		return err
	}
	const chunk = 100_000
	for from := 0; from < n; from += chunk {
		if _, err := pool.Exec(ctx, `
			insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
			select 'hist-' || $1 || '-' || i,
			       u.id,
			       now() - interval '8 days' - (i % 730) * interval '1 day' - (i % 1440) * interval '1 minute',
			       60 + i % 3600,
			       (i % 101) / 100.0
			from generate_series($2::int, $3::int - 1) i
			join users u on u.external_id = $1 || '-' || (i % $4)`,
			prefix, from, min(from+chunk, n), users); err != nil {
			return err
		}
	}
	_, err := pool.Exec(ctx, "analyze sessions")
	return err
}
