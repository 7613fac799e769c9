package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"coco/internal/localpg"
)

// StandbyReads is the standby scenario: dashboard reads through a coco that
// routes them to a hot standby, against the coco that reads from the
// primary alone.
type StandbyReads struct {
	Standby string   `json:"standby,omitempty"` // host:port; "" when skipped
	Results []Result `json:"results,omitempty"`
	// Reads the standby-routed coco answered during the scenario, warm-ups
	// included, by where they went (its coco_db_reads_total), and the
	// standby's share of them.
	StandbyReads int64   `json:"standby_reads"`
	PrimaryReads int64   `json:"primary_reads"`
	Share        float64 `json:"standby_share"`
	// Note says why the scenario was skipped, or what became of the dev
	// PostgreSQL's standby.
	Note string `json:"note,omitempty"`
}

// standbyServer is a hot standby of the bench's server.
type standbyServer struct {
	url  string       // the standby's server URL; only its host:port is used
	note string       // for the report
	stop func() error // stops it if the bench started it; nil otherwise
}

// findStandby returns BENCH_READ_URL, else, when the bench's server is the
// dev PostgreSQL, its standby, started if it does not run; else a reason to
// skip the scenario.
func findStandby(ctx context.Context) (sb standbyServer, skip string, err error) {
	if u := os.Getenv("BENCH_READ_URL"); u != "" {
		return standbyServer{url: u, note: "the standby is BENCH_READ_URL's"}, "", nil
	}
	if os.Getenv("BENCH_DATABASE_URL") != "" {
		return sb, "BENCH_DATABASE_URL is set and BENCH_READ_URL, a hot standby of that server, is not", nil
	}
	primary, err := localpg.Start(ctx, devDir)
	if err != nil {
		return sb, "", err
	}
	dir := localpg.StandbyDir(devDir)
	// A standby that does not run is made anew from a base backup of the
	// whole cluster, other databases included.
	progress("standby: starting the dev PostgreSQL's standby in %s, or finding it running", dir)
	s, err := primary.StartStandby(ctx)
	if err != nil {
		return sb, "", fmt.Errorf("start the dev standby: %w", err)
	}
	if s.Reused() {
		return standbyServer{url: s.URL(), note: "the dev standby in " + dir + " was running and is left running"}, "", nil
	}
	return standbyServer{url: s.URL(), stop: s.Stop,
		note: "the bench started the dev standby in " + dir + " and stopped it at the scenario's end (make db-clean deletes its data)"}, "", nil
}

// standbyReads measures full dashboard reads and 304s of the seeded readers
// at each concurrency through a coco that routes them to a hot standby of
// d's database, alternating its runs with d's coco, which reads from the
// primary alone. It runs before the growth scenario, whose bulk inserts a
// standby started here would otherwise replay, and stops that standby.
func (b bench) standbyReads(ctx context.Context, d *deployment, bin string, readers []string, etags map[string]string) (*StandbyReads, error) {
	start := time.Now()
	sb, skip, err := findStandby(ctx)
	if err != nil {
		return nil, err
	}
	if skip != "" {
		progress("standby: skipped: %s", skip)
		return &StandbyReads{Note: "skipped: " + skip}, nil
	}
	if sb.stop != nil {
		defer func() {
			if err := sb.stop(); err != nil {
				progress("standby: stopping the dev standby: %v", err)
			}
		}()
	}
	standbyURL, err := withHostOf(d.dbURL, sb.url)
	if err != nil {
		return nil, err
	}
	out := &StandbyReads{Standby: hostOf(standbyURL), Note: sb.note}
	progress("standby: waiting for %s to replay the seeded data", out.Standby)
	if err := waitForReplay(ctx, d.pool, standbyURL); err != nil {
		return nil, err
	}
	routed, err := startRoutedCoco(ctx, bin, d.dbURL, standbyURL)
	if err != nil {
		return nil, err
	}
	defer routed.close()

	before, err := scrape(routed.metricsAddr, "coco_db_reads_total")
	if err != nil {
		return nil, err
	}
	for _, c := range b.o.clients {
		for _, s := range []struct {
			name  string
			etags map[string]string
		}{{"dashboard http", nil}, {"dashboard 304", etags}} {
			r, primaryOnly := b.pair(ctx, s.name, "primary only: ", c,
				routed.dashboardHTTP(readers, s.etags), d.dashboardHTTP(readers, s.etags))
			r.Scenario = "with standby: " + r.Scenario
			versus(&r, primaryOnly, r.RPS/primaryOnly.RPS)
			out.Results = append(out.Results, primaryOnly, r)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	after, err := scrape(routed.metricsAddr, "coco_db_reads_total")
	if err != nil {
		return nil, err
	}
	out.PrimaryReads = int64(after["primary"] - before["primary"])
	out.StandbyReads = int64(sum(after)-sum(before)) - out.PrimaryReads
	if total := out.StandbyReads + out.PrimaryReads; total > 0 {
		out.Share = float64(out.StandbyReads) / float64(total)
	}
	progress("standby: done in %s", time.Since(start).Round(time.Second))
	return out, nil
}

// withHostOf is dbURL with the host:port of server: the same database, user
// and options on the standby, which replicates every database of the server.
func withHostOf(dbURL, server string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	s, err := url.Parse(server)
	if err != nil || s.Host == "" {
		return "", fmt.Errorf("standby URL %q: want postgres://host:port/...", server)
	}
	u.Host = s.Host
	return u.String(), nil
}

func hostOf(rawURL string) string {
	u, _ := url.Parse(rawURL)
	return u.Host
}

// waitForReplay waits until the standby at standbyURL has replayed the WAL
// that the primary had written when it was called.
func waitForReplay(ctx context.Context, primary *pgxpool.Pool, standbyURL string) error {
	var lsn string
	if err := primary.QueryRow(ctx, "select pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	standby, err := openPool(ctx, standbyURL)
	if err != nil {
		return fmt.Errorf("standby: %w", err)
	}
	defer standby.Close()
	return waitFor(ctx, 2*time.Minute, "the standby to replay the primary's WAL up to "+lsn, func() (bool, error) {
		var recovering, replayed bool
		err := standby.QueryRow(ctx, "select pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
			lsn).Scan(&recovering, &replayed)
		if err == nil && !recovering {
			return true, fmt.Errorf("%s is not in recovery: not a hot standby", hostOf(standbyURL))
		}
		return replayed, err
	})
}

// routedCoco is a coco serve that routes dashboard reads to a standby.
type routedCoco struct {
	target
	proc        *cocoProcess
	metricsAddr string
}

// startRoutedCoco starts coco on dbURL with standbyURL as its only
// standby, and waits until it uses the standby.
func startRoutedCoco(ctx context.Context, bin, dbURL, standbyURL string) (*routedCoco, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	proc, err := startCoco(ctx, bin, dbURL, "DATABASE_READ_URL="+standbyURL, "METRICS_ADDR="+metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("coco with a standby: %w", err)
	}
	r := &routedCoco{target: target{host: proc.host, wire: newWire(proc.host)}, proc: proc, metricsAddr: metricsAddr}
	err = waitFor(ctx, 30*time.Second, "coco to use the standby (coco_db_standby_in_use 1)", func() (bool, error) {
		inUse, err := scrape(metricsAddr, "coco_db_standby_in_use")
		return len(inUse) > 0 && sum(inUse) == float64(len(inUse)), err
	})
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *routedCoco) close() {
	r.wire.close()
	r.proc.stop()
}

// scrape reads coco's /metrics at addr and returns the samples of metric
// name, by the value of their one label.
func scrape(addr, name string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	samples := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		_, label, _ := strings.Cut(labels, "=")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", line, err)
		}
		samples[strings.Trim(label, `"`)] = v
	}
	return samples, nil
}

func sum(samples map[string]float64) float64 {
	var n float64
	for _, v := range samples {
		n += v
	}
	return n
}

// waitFor calls cond every 100 ms until it reports done, for up to timeout,
// and returns cond's error once done.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := cond()
		if done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s (last error: %v)", timeout, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *StandbyReads) print(w io.Writer, cores int) {
	if s.Standby == "" {
		fmt.Fprintf(w, "\ndashboard reads with a hot standby: %s\n", s.Note)
		return
	}
	fmt.Fprintf(w, "\ndashboard reads through coco routing them to one hot standby (%s) against coco on the primary alone,\n"+
		"alternating runs (ratio = standby-routed over primary-only). A routing-cost check on %d shared cores, not a\n"+
		"scaling claim: the load, both cocos and, with the dev PostgreSQL, the primary and the standby share this machine.\n\n",
		s.Standby, cores)
	table(w, s.Results, "rps ratio")
	fmt.Fprintf(w, "\nthe standby answered %.1f%% of the standby-routed coco's reads (%d of %d; coco_db_reads_total)\n%s\n",
		100*s.Share, s.StandbyReads, s.StandbyReads+s.PrimaryReads, s.Note)
}
