// Command coco is the coco service and its operator tools: `serve` runs the
// HTTP API, `migrate` brings the schema up to date, `seed-demo` fills a
// demo week, `recompute` rebuilds rollups, and `erase`, `export`, `prune`
// and `grant-analyst` look after the families' data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5/pgxpool"

	"coco/sql/migrations"
	"coco/sql/store"
)

// Exit statuses: 2 is what the flag package and most Unix tools use for
// "you called me wrong", which includes a bad environment.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stop, os.Args[1:], env.ToMap(os.Environ()), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is where a subcommand reads its environment and writes its output.
type cli struct {
	environ map[string]string
	stdout  io.Writer
	stderr  io.Writer
	// stopSignals restores the default signal handling, so that a second
	// Ctrl-C or SIGTERM during a graceful shutdown ends the process at once.
	stopSignals func()
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c cli, args []string) int
}

var commands = []command{
	{"serve", "serve the HTTP API on :$PORT (the default command)", runServe},
	{"migrate", "apply the embedded schema migrations and print the version reached", runMigrate},
	{"seed-demo", "fill the last seven days (UTC) of one user with demo sessions", runSeedDemo},
	{"recompute", "rebuild dashboard rollups from the stored sessions", runRecompute},
	{"erase", "erase a user and everything stored about them, for good", runErase},
	{"export", "print everything stored about a user, as JSON", runExport},
	{"prune", "delete sessions older than a retention period, in batches", runPrune},
	{"grant-analyst", "create or update a read-only role for analysts", runGrantAnalyst},
	{"healthcheck", "exit 0 when the local /readyz answers 200 (for a container HEALTHCHECK)", runHealthcheck},
	{"version", "print the version and the commit coco was built from (also -version)", runVersion},
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: coco [-env-file path] [command] [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
With no command, coco serves. Run "coco <command> -h" for a command's flags
and the environment variables it reads. Variables are read from the
environment and, under it, from .env when there is one (-env-file names
another file); the environment wins.

Exit status: 0 on success, 1 when the work failed (for example, the database
is unreachable), 2 for bad flags, an unknown command or a bad environment.
`)
}

func run(ctx context.Context, stopSignals func(), args []string, environ map[string]string, stdout, stderr io.Writer) int {
	envFile, explicit := ".env", false
	if len(args) >= 2 && args[0] == envFileFlag {
		envFile, explicit, args = args[1], true, args[2:]
	} else if v, ok := strings.CutPrefix(firstArg(args), envFileFlag+"="); ok {
		envFile, explicit, args = v, true, args[1:]
	}
	environ, err := withEnvFile(envFile, explicit, environ)
	if err != nil {
		fmt.Fprintf(stderr, "coco: %v\n", err)
		return exitUsage
	}
	c := cli{environ: environ, stdout: stdout, stderr: stderr, stopSignals: stopSignals}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && isHelp(args[0]) {
			usage(stderr)
			return exitOK
		}
		if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
			return runVersion(ctx, c, nil)
		}
		return runServe(ctx, c, args)
	}
	if args[0] == "help" {
		usage(stderr)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd.run(ctx, c, args[1:])
		}
	}
	fmt.Fprintf(stderr, "coco: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

// flagSet returns a FlagSet whose -h prints synopsis, the flags and then
// more (the variables the command reads).
func (c cli) flagSet(name, synopsis, more string) *flag.FlagSet {
	fs := flag.NewFlagSet("coco "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: coco %s %s\n", name, synopsis)
		fmt.Fprintln(c.stderr, "\nFlags:")
		fs.PrintDefaults()
		fmt.Fprint(c.stderr, more)
	}
	return fs
}

// parse parses args into fs and returns the exit status to stop with, or -1
// to go on: 0 after -h, 2 after a bad flag or a stray argument.
func (c cli) parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // flag has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	return -1
}

// fail prints "coco <cmd>: err" and returns the status for it: 2 for a bad
// environment, 1 otherwise.
func (c cli) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "coco %s: %v\n", cmd, err)
	var cfgErr *ConfigError
	if errors.As(err, &cfgErr) {
		return exitUsage
	}
	return exitFail
}

// progress returns a function that prints, on stderr, how many things a
// long command has done so far and at what rate: one line per batch.
func (c cli) progress(cmd, things string) func(done int) {
	start := time.Now()
	return func(done int) {
		fmt.Fprintf(c.stderr, "coco %s: %d %s so far (%.0f/s)\n", cmd, done, things, float64(done)/time.Since(start).Seconds())
	}
}

const dbVarsHelp = `
Environment:
  DATABASE_URL          postgres://, postgresql:// or postgresql+psycopg:// URL (required)
  DB_TIMEOUT            connect timeout; under serve also each request's database deadline (default 2s)
`

// openPool returns a pool on dbURL. It does not connect: the first query
// does, so `serve` starts while the database is still down.
func openPool(ctx context.Context, dbURL databaseURL, timeout positiveDuration) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(string(dbURL))
	if err != nil {
		return nil, errors.New("not a valid PostgreSQL URL")
	}
	// Without a timeout a dial to a dead host waits for the kernel (minutes);
	// a connect_timeout in the URL wins.
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = time.Duration(timeout)
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "coco"
	}
	return pgxpool.NewWithConfig(ctx, pc)
}

// migrateSchema brings the schema at pool's database to this binary's
// version on a connection of its own (see migrations.Migrate).
func migrateSchema(ctx context.Context, pool *pgxpool.Pool, o migrations.Options) (migrations.Result, error) {
	return migrations.Migrate(ctx, pool.Config().ConnConfig, o)
}

// requireSchema fails unless the database is at this binary's version, so a
// command on an unmigrated database says so instead of "function does not
// exist".
func requireSchema(ctx context.Context, pool *pgxpool.Pool) error {
	want := migrations.ExpectedVersion()
	got, err := store.NewStore(pool).SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if got != want {
		return fmt.Errorf("the database schema is at version %d, this binary expects %d: run `coco migrate`", got, want)
	}
	return nil
}

// connect opens the pool an operator command works on: DATABASE_URL from the
// environment and, unless the command is migrate, a schema at this binary's
// version. On failure it has told the operator why, and pool is nil.
func (c cli) connect(ctx context.Context, cmd string) (pool *pgxpool.Pool, exitCode int) {
	cfg, err := LoadDBConfig(c.environ)
	if err != nil {
		return nil, c.fail(cmd, err)
	}
	if pool, err = openPool(ctx, cfg.DatabaseURL, cfg.DBTimeout); err != nil {
		return nil, c.fail(cmd, err)
	}
	if cmd != "migrate" {
		if err := requireSchema(ctx, pool); err != nil {
			pool.Close()
			return nil, c.fail(cmd, err)
		}
	}
	return pool, exitOK
}
