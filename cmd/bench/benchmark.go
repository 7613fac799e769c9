package main

import (
	"coco/internal/gitbuild"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one `make bench` measured.
type Report struct {
	Started    time.Time      `json:"started"`
	Machine    Machine        `json:"machine"`
	Settings   map[string]any `json:"settings"`
	Results    []Result       `json:"results"`
	PeakRSSMiB float64        `json:"coco_peak_rss_mib"`
	Zoned      []Result       `json:"zoned,omitempty"`
	Batches    []BatchResult  `json:"batches,omitempty"`
	// BatchPeakRSSMiB is coco's peak after the batch scenarios, 1 MiB bodies included.
	BatchPeakRSSMiB float64       `json:"coco_peak_rss_after_batches_mib,omitempty"`
	Standby         *StandbyReads `json:"standby,omitempty"`
	Baseline        []Result      `json:"baseline,omitempty"`
	Growth          []Result      `json:"growth,omitempty"`
}

// Result is one scenario at one concurrency: medians over the repeats, the
// runs themselves, and its ratio to the scenario it is compared with.
type Result struct {
	Scenario string  `json:"scenario"`
	Clients  int     `json:"clients"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Errors   int     `json:"errors"`
	// FirstError is the first of the runs' first errors.
	FirstError string `json:"first_error,omitempty"`
	// Versus names the baseline and Ratio is this result over it: requests
	// per second for throughput scenarios, p50 latency for growth.
	Versus string  `json:"versus,omitempty"`
	Ratio  float64 `json:"ratio,omitempty"`
	Runs   []Stats `json:"runs"`
}

// writers is how many users the ingest scenarios spread sessions over: many,
// so that each user's window holds a realistic few sessions even after a
// long run, and the recompute cost stays what a deployment would see.
const writers = 10_000

type bench struct {
	o options
}

// pair measures the same scenario on this build and on the baseline, one
// run of each in turn, so a slow moment of the machine hits both alike;
// which goes first alternates, so neither always runs in the wake of the
// other (its autovacuum, its cold caches). The ratio is the median of the
// runs' ratios, each of two runs side by side.
func (b bench) pair(ctx context.Context, scenario, baseLabel string, clients int, do, baseDo request) (Result, Result) {
	progress("%s, %d clients, alternating with %s", scenario, clients, strings.TrimSuffix(baseLabel, ": "))
	closedLoop(ctx, clients, b.o.warmup, do)
	closedLoop(ctx, clients, b.o.warmup, baseDo)
	r := Result{Scenario: scenario, Clients: clients}
	base := Result{Scenario: baseLabel + scenario, Clients: clients}
	ratios := make([]float64, 0, b.o.repeats)
	for i := range b.o.repeats {
		runs := []struct {
			res *Result
			do  request
		}{{&r, do}, {&base, baseDo}}
		if i%2 == 1 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, x := range runs {
			x.res.add(closedLoop(ctx, clients, b.o.duration, x.do))
		}
		ratios = append(ratios, r.Runs[i].RPS/base.Runs[i].RPS)
	}
	for _, x := range []*Result{&r, &base} {
		x.RPS = median(x.Runs, func(s Stats) float64 { return s.RPS })
		x.P50ms = median(x.Runs, func(s Stats) float64 { return s.P50ms })
		x.P99ms = median(x.Runs, func(s Stats) float64 { return s.P99ms })
	}
	versus(&r, base, middle(ratios))
	return r, base
}

// measure warms up, then runs the load o.repeats times.
func (b bench) measure(ctx context.Context, scenario string, clients int, do request) Result {
	progress("%s, %d clients", scenario, clients)
	closedLoop(ctx, clients, b.o.warmup, do)
	r := Result{Scenario: scenario, Clients: clients}
	for range b.o.repeats {
		s := closedLoop(ctx, clients, b.o.duration, do)
		r.add(s)
	}
	r.RPS = median(r.Runs, func(s Stats) float64 { return s.RPS })
	r.P50ms = median(r.Runs, func(s Stats) float64 { return s.P50ms })
	r.P99ms = median(r.Runs, func(s Stats) float64 { return s.P99ms })
	return r
}

// add counts a run in r.
func (r *Result) add(s Stats) {
	r.Runs = append(r.Runs, s)
	r.Errors += s.Errors
	if r.FirstError == "" {
		r.FirstError = s.FirstError
	}
}

// printFirstErrors says what went wrong in each scenario that had errors.
func printFirstErrors(w io.Writer, results []Result) {
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "  %s, %d clients, first error: %s\n", r.Scenario, r.Clients, r.FirstError)
		}
	}
}

func versus(r *Result, base Result, ratio float64) {
	r.Versus = base.Scenario
	r.Ratio = ratio
}

func benchmark(ctx context.Context, o options) (*Report, error) {
	rep := &Report{Started: time.Now().UTC(), Settings: map[string]any{
		"duration": o.duration.String(), "warmup": o.warmup.String(), "repeats": o.repeats,
		"pool_max_conns": o.poolSize, "big": o.big, "baseline": o.baseline, "revision": o.revision,
	}}
	server, err := serverURL(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "coco-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin, migrate, err := thisBuild(ctx, o.revision, tmp)
	if err != nil {
		return nil, err
	}

	d, err := deploy(ctx, server, bin, "coco_bench", o.poolSize, migrate)
	if err != nil {
		return nil, err
	}
	defer d.close()
	var base *deployment
	if o.baseline != "" {
		progress("building coco at %s", o.baseline)
		baseBin, err := gitbuild.Coco(ctx, o.baseline, filepath.Join(tmp, "baseline"))
		if err != nil {
			return nil, err
		}
		if base, err = deploy(ctx, server, baseBin, "coco_bench_baseline", o.poolSize, migrateWith(baseBin)); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		defer base.close()
	}
	var pgVersion string
	if err := d.pool.QueryRow(ctx, "show server_version").Scan(&pgVersion); err != nil {
		return nil, err
	}
	rep.Machine = thisMachine(pgVersion)
	t := d.target

	readers := names("reader", 200)
	progress("seeding a week of sessions for %d users", len(readers))
	if err := seedWeek(ctx, t.store, readers); err != nil {
		return nil, fmt.Errorf("seed readers: %w", err)
	}
	etags, err := t.etagsOf(readers)
	if err != nil {
		return nil, err
	}
	var baseETags map[string]string
	if base != nil {
		if err := seedWeek(ctx, base.store, readers); err != nil {
			return nil, fmt.Errorf("seed the baseline's readers: %w", err)
		}
		if baseETags, err = base.etagsOf(readers); err != nil {
			return nil, err
		}
	}

	// The ingest scenarios spread sessions over writers that already
	// exist, as a deployment's devices do; a user's first ingest has a
	// scenario of its own, with users no ingest has seen.
	progress("creating %d writers with a week of sessions each", writers)
	for _, dep := range []*deployment{d, base} {
		if dep == nil {
			continue
		}
		if err := seedWriters(ctx, dep.pool); err != nil {
			return nil, fmt.Errorf("seed writers: %w", err)
		}
	}

	b := bench{o: o}
	for _, c := range o.clients {
		newcomers := fmt.Sprintf("newcomer-%d", c)
		// The HTTP scenarios run alternately with the baseline's, if any.
		var ingestHTTP, newHTTP, readHTTP, read304 Result
		if base == nil {
			ingestHTTP = b.measure(ctx, "ingest http", c, t.ingestHTTP("writer", writers))
			newHTTP = b.measure(ctx, "ingest http, new users", c, t.ingestHTTP(newcomers, math.MaxInt))
			readHTTP = b.measure(ctx, "dashboard http", c, t.dashboardHTTP(readers, nil))
			read304 = b.measure(ctx, "dashboard 304", c, t.dashboardHTTP(readers, etags))
		} else {
			label := o.baseline + ": "
			var baseIngest, baseNew, baseRead, base304 Result
			ingestHTTP, baseIngest = b.pair(ctx, "ingest http", label, c, t.ingestHTTP("writer", writers), base.ingestHTTP("writer", writers))
			newHTTP, baseNew = b.pair(ctx, "ingest http, new users", label, c, t.ingestHTTP(newcomers, math.MaxInt), base.ingestHTTP(newcomers, math.MaxInt))
			readHTTP, baseRead = b.pair(ctx, "dashboard http", label, c, t.dashboardHTTP(readers, nil), base.dashboardHTTP(readers, nil))
			read304, base304 = b.pair(ctx, "dashboard 304", label, c, t.dashboardHTTP(readers, etags), base.dashboardHTTP(readers, baseETags))
			rep.Baseline = append(rep.Baseline, baseIngest, ingestHTTP, baseNew, newHTTP, baseRead, readHTTP, base304, read304)
		}
		versus(&read304, readHTTP, read304.RPS/readHTTP.RPS)
		versus(&newHTTP, ingestHTTP, newHTTP.RPS/ingestHTTP.RPS)
		if o.revision == "" {
			ingestSQL := b.measure(ctx, "ingest sql", c, t.ingestSQL("writer", writers))
			readSQL := b.measure(ctx, "dashboard sql", c, t.dashboardSQL(readers))
			versus(&ingestHTTP, ingestSQL, ingestHTTP.RPS/ingestSQL.RPS)
			versus(&readHTTP, readSQL, readHTTP.RPS/readSQL.RPS)
			rep.Results = append(rep.Results, ingestHTTP, newHTTP, ingestSQL, readHTTP, readSQL, read304)
		} else {
			// The direct-SQL ceilings call this tree's store, which another
			// revision's schema may not serve.
			rep.Results = append(rep.Results, ingestHTTP, newHTTP, readHTTP, read304)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if rep.PeakRSSMiB, err = d.proc.peakRSS(); err != nil {
		return nil, err
	}
	// These use settings, batches and standbys, which a previous release
	// may lack.
	if o.revision == "" {
		if rep.Zoned, err = b.zoned(ctx, t, d.pool); err != nil {
			return nil, fmt.Errorf("zoned: %w", err)
		}
		if rep.Batches, rep.BatchPeakRSSMiB, err = b.batches(ctx, t, d.proc); err != nil {
			return nil, fmt.Errorf("batches: %w", err)
		}
		if o.standby {
			if rep.Standby, err = b.standbyReads(ctx, d, bin, readers, etags); err != nil {
				return nil, fmt.Errorf("standby: %w", err)
			}
		}
	}

	if o.growth {
		if rep.Growth, err = b.growth(ctx, server, bin, migrate); err != nil {
			return nil, fmt.Errorf("growth: %w", err)
		}
	}
	return rep, nil
}

func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "coco benchmark, %s: %d cores, %s, PostgreSQL %s; %s x %d runs (medians), pool %v\n\n",
		r.Started.Format(time.DateOnly), r.Machine.Cores, r.Machine.Go, r.Machine.Postgres,
		r.Settings["duration"], r.Settings["repeats"], r.Settings["pool_max_conns"])
	table(w, r.Results, "rps ratio")
	fmt.Fprintf(w, "\ncoco peak RSS: %.1f MiB\n", r.PeakRSSMiB)
	if len(r.Baseline) > 0 {
		measured := "this build"
		if rev, _ := r.Settings["revision"].(string); rev != "" {
			measured = "coco at " + rev
		}
		fmt.Fprintf(w, "\n%s against %s, alternating runs (ratio = %[1]s over it)\n\n", measured, r.Settings["baseline"])
		table(w, r.Baseline, "rps ratio")
	}
	if len(r.Batches) > 0 {
		fmt.Fprintf(w, "\nbatch ingest (ratios: http over sql; sql and 1 MiB over single ingests)\n\n")
		printBatches(w, r.Batches)
		fmt.Fprintf(w, "\ncoco peak RSS after 8 clients sent 1 MiB batches: %.1f MiB\n", r.BatchPeakRSSMiB)
	}
	if len(r.Zoned) > 0 {
		fmt.Fprintf(w, "\nusers with time zones (12 zones) against UTC users (ratio = zoned over UTC)\n\n")
		table(w, r.Zoned, "rps ratio")
	}
	if r.Standby != nil {
		r.Standby.print(w, r.Machine.Cores)
	}
	if len(r.Growth) > 0 {
		fmt.Fprintf(w, "\ngrowth (ratio = p50 over the 1-thousand-session case)\n\n")
		table(w, r.Growth, "p50 ratio")
	}
}

func table(w io.Writer, results []Result, ratioName string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tclients\treq/s\tp50 ms\tp99 ms\terrors\t%s\tversus\t\n", ratioName)
	for _, r := range results {
		ratio := ""
		if r.Versus != "" {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t\n",
			r.Scenario, r.Clients, r.RPS, r.P50ms, r.P99ms, r.Errors, ratio, r.Versus)
	}
	tw.Flush()
	printFirstErrors(w, results)
}
