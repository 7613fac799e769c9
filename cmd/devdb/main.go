// Command devdb starts and stops the local development PostgreSQL cluster
// that `make test` and `make run` use when no DATABASE_URL is given, and a
// hot standby of it to try read replicas with. It is a thin wrapper around
// coco/cmd/internal/localpg.
//
// Usage:
//
//	devdb start         [-dir .localpg]   start the cluster (or find it running); print its URL
//	devdb start-standby [-dir .localpg]   start a streaming standby of it (or find it running),
//	                                      starting the cluster too if needed; print the standby's URL
//	devdb stop          [-dir .localpg]   stop the standby, then the cluster; a no-op when they do not run
//	devdb url           [-dir .localpg]   print the cluster's URL if it runs; exit 1 otherwise
//
// Only the URL goes to standard output, so that a script can say
// DATABASE_URL=$(go run ./cmd/devdb start); messages go to standard error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"coco/cmd/internal/localpg"
)

const usage = `usage: devdb <command> [-dir DIR]

Manages the throwaway local PostgreSQL cluster kept in DIR (default .localpg).

commands:
  start           start the cluster, or find it running, and print its URL
  start-standby   start a hot standby of the cluster in DIR/standby, streaming
                  from it (and the cluster too if needed), or find it running,
                  and print the standby's URL
  stop            stop the standby, if it runs, then the cluster; does nothing
                  if they do not run
  url             print the cluster's URL if it runs; exit 1 otherwise
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes devdb with args and returns the exit code: 0 on success, 1 on
// failure, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "start", "start-standby", "stop", "url":
	default:
		fmt.Fprintf(stderr, "devdb: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("devdb "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".localpg", "directory of the cluster (git-ignored)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: devdb %s [-dir DIR]\n", cmd)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devdb %s: unexpected argument %q\n", cmd, fs.Arg(0))
		fs.Usage()
		return 2
	}

	switch cmd {
	case "start", "start-standby":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		c, err := localpg.Start(ctx, *dir)
		if err != nil {
			fmt.Fprintf(stderr, "devdb: %v\n", err)
			return 1
		}
		started(stderr, "PostgreSQL", c)
		if cmd == "start-standby" {
			if c, err = c.StartStandby(ctx); err != nil {
				fmt.Fprintf(stderr, "devdb: %v\n", err)
				return 1
			}
			started(stderr, "PostgreSQL standby", c)
		}
		fmt.Fprintln(stdout, c.URL())
	case "stop":
		// The standby first: the primary's shutdown waits for its standbys.
		sdir := localpg.StandbyDir(*dir)
		stopped, err := localpg.StopDir(sdir)
		if err != nil {
			fmt.Fprintf(stderr, "devdb: %v\n", err)
			return 1
		}
		if stopped {
			fmt.Fprintf(stderr, "devdb: PostgreSQL standby in %s stopped\n", sdir)
		}
		stopped, err = localpg.StopDir(*dir)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "devdb: %v\n", err)
			return 1
		case stopped:
			fmt.Fprintf(stderr, "devdb: PostgreSQL in %s stopped\n", *dir)
		default:
			fmt.Fprintf(stderr, "localpg: no PostgreSQL server running in %s\n", *dir)
		}
	case "url":
		c, err := localpg.Running(*dir)
		if errors.Is(err, localpg.ErrNotRunning) {
			fmt.Fprintf(stderr, "devdb: no PostgreSQL server running in %s\n", *dir)
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "devdb: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, c.URL())
	}
	return 0
}

// started says on stderr whether the server c was started or found running.
func started(stderr io.Writer, what string, c *localpg.Cluster) {
	if c.Reused() {
		fmt.Fprintf(stderr, "devdb: %s already running on port %d (log %s)\n", what, c.Port(), c.LogFile())
	} else {
		fmt.Fprintf(stderr, "devdb: %s started on port %d (data %s, log %s)\n",
			what, c.Port(), c.DataDir(), c.LogFile())
	}
}
