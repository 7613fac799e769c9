// Command bench measures coco under closed-loop load: ingest and dashboard
// reads through the real `coco serve`, and the same SQL called directly with
// pgx (the ceiling this design can reach), dashboard reads routed to a hot
// standby against the primary alone, then the same as history grows.
// It prints a table and writes the results as JSON. Run it with `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration time.Duration
	warmup   time.Duration
	repeats  int
	clients  []int
	poolSize int
	growth   bool
	standby  bool
	big      int
	out      string
	baseline string
	revision string
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: bench [flags]

Database: BENCH_DATABASE_URL, else the local dev PostgreSQL (.localpg). On
that server the benchmark drops and recreates the databases coco_bench and
coco_bench_growth (and with -baseline, coco_bench_baseline) WITH (FORCE),
disconnecting their users: point it only at a server of your own. It ignores DATABASE_URL.

The standby scenario (-standby) reads through a coco with DATABASE_READ_URL
set to a hot standby of that server: BENCH_READ_URL (its host:port; user,
password and options come from the server's URL), else, on the dev
PostgreSQL, its standby in .localpg/standby, started for the scenario and
stopped after it unless it was running. With BENCH_DATABASE_URL set and
BENCH_READ_URL unset, the scenario is skipped.

flags:`)
		fs.PrintDefaults()
	}
	var o options
	var clients string
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of each run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each scenario and concurrency")
	fs.IntVar(&o.repeats, "repeats", 3, "runs per scenario and concurrency; the report gives medians")
	fs.StringVar(&clients, "clients", "1,8,32", "comma-separated concurrencies (closed-loop clients)")
	fs.IntVar(&o.poolSize, "pool", 8, "database connections for coco and for the direct-SQL ceiling alike")
	fs.BoolVar(&o.growth, "growth", true, "also measure with 1 thousand and 1 million stored sessions and a 10-thousand-session user")
	fs.BoolVar(&o.standby, "standby", true, "also measure dashboard reads through coco routed to a hot standby against coco on the primary alone")
	fs.IntVar(&o.big, "big", 1_000_000, "stored sessions for the large growth case")
	fs.StringVar(&o.out, "out", "bench-results", "directory for the JSON results")
	fs.StringVar(&o.baseline, "baseline", "", "also run coco as it was at this git `revision` (a previous release) on a database of its own, alternating its runs with this build's, and report this build over it")
	fs.StringVar(&o.revision, "revision", "", "benchmark coco as it was at this git `revision` (with its own migrations) instead of the working tree; only the scenarios every release serves run (ingest, a user's first ingest, dashboard reads and 304s, and growth without the erasure), so with -baseline it measures what the commits between the two cost")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	for _, c := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -clients: %q is not a positive number\n", c)
			return 2
		}
		o.clients = append(o.clients, n)
	}
	if fs.NArg() > 0 || o.repeats < 1 || o.poolSize < 1 || o.duration <= 0 {
		fs.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := benchmark(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	report.print(os.Stdout)
	path, err := report.save(o.out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("\nresults: %s\n", path)
	return 0
}

// Machine says where the numbers were measured.
type Machine struct {
	Cores    int    `json:"cores"`
	Go       string `json:"go"`
	Postgres string `json:"postgres"`
	OS       string `json:"os"`
}

func thisMachine(pgVersion string) Machine {
	return Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Postgres: pgVersion, OS: runtime.GOOS + "/" + runtime.GOARCH}
}

func (r *Report) save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bench-"+r.Started.UTC().Format("20060102T150405Z")+".json")
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(body, '\n'), 0o644)
}
