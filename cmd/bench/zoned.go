package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/store"
)

// benchZones spread the zoned users over whole-hour, half-hour and
// 45-minute offsets, with and without daylight saving time, east and west.
var benchZones = []string{
	"America/Los_Angeles", "America/New_York", "America/St_Johns", "Europe/London",
	"Europe/Berlin", "Asia/Tehran", "Asia/Kolkata", "Asia/Kathmandu",
	"Asia/Tokyo", "Australia/Adelaide", "Pacific/Auckland", "Pacific/Chatham",
}

// zoned measures users with time zones against UTC users in the same run, at
// 8 clients: ingest (the device reporting its zone, as devices will) and
// dashboard reads. Ratios are zoned over UTC.
func (b bench) zoned(ctx context.Context, t target, pool *pgxpool.Pool) ([]Result, error) {
	progress("zoned: giving %d writers and 200 readers time zones", writers)
	if err := giveZones(ctx, pool, "zwriter", writers); err != nil {
		return nil, err
	}
	if err := giveZones(ctx, pool, "zreader", 200); err != nil {
		return nil, err
	}
	if err := seedWeek(ctx, t.store, names("zreader", 200)); err != nil {
		return nil, err
	}
	const clients = 8
	utcIngest := b.measure(ctx, "utc: ingest http", clients, t.ingestHTTP("writer", writers))
	zonedIngest := b.measure(ctx, "zoned: ingest http", clients, t.ingestZonedHTTP("zwriter", writers))
	utcRead := b.measure(ctx, "utc: dashboard http", clients, t.dashboardHTTP(names("reader", 200), nil))
	zonedRead := b.measure(ctx, "zoned: dashboard http", clients, t.dashboardHTTP(names("zreader", 200), nil))
	versus(&zonedIngest, utcIngest, zonedIngest.RPS/utcIngest.RPS)
	versus(&zonedRead, utcRead, zonedRead.RPS/utcRead.RPS)
	return []Result{utcIngest, zonedIngest, utcRead, zonedRead}, nil
}

// giveZones creates the users prefix-0 .. prefix-(n-1), if missing, each
// with a zone of benchZones in force for the last month.
func giveZones(ctx context.Context, pool *pgxpool.Pool, prefix string, n int) error {
	_, err := pool.Exec(ctx, `
		insert into users (external_id) select $1 || '-' || i from generate_series(0, $2 - 1) i
		on conflict (external_id) do nothing`, prefix, n)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `
		insert into user_settings (user_id, effective_from, time_zone, day_starts_at)
		select u.id, now() - interval '30 days', ($3::text[])[1 + i % cardinality($3::text[])], interval '0'
		from generate_series(0, $2 - 1) i join users u on u.external_id = $1 || '-' || i
		on conflict do nothing`, prefix, n, benchZones)
	return err
}

// ingestZonedHTTP is ingestHTTP for zoned users, whose device reports the
// zone they are in (the one in force).
func (t target) ingestZonedHTTP(prefix string, users int) request {
	return func(_ context.Context, client int) error {
		s := nextSession(prefix, users)
		s.TimeZone = benchZones[userIndex(s, prefix)%len(benchZones)]
		_, err := t.expect(client, t.ingestRequest(s), http.StatusOK)
		return err
	}
}

// userIndex is N of the user prefix-N that s belongs to.
func userIndex(s store.Session, prefix string) int {
	var n int
	fmt.Sscanf(s.UserExternalID[len(prefix)+1:], "%d", &n)
	return n
}
