// Command devdb starts and stops the local development PostgreSQL cluster
// that `make test` and `make run` use when no DATABASE_URL is given, and a
// hot standby of it to try read replicas with, and deletes their data. It is
// a thin wrapper around coco/internal/localpg.
//
// Usage:
//
//	devdb start         [-dir .localpg]   start the cluster (or find it running); print its URL
//	devdb start-standby [-dir .localpg]   start a streaming standby of it (or find it running),
//	                                      starting the cluster too if needed; print the standby's URL
//	devdb stop          [-dir .localpg]   stop the standby, then the cluster, keeping their data;
//	                                      a no-op when they do not run
//	devdb clean         [-dir .localpg]   stop them if they run and delete their data for good
//	devdb url           [-dir .localpg]   print the cluster's URL if it runs; exit 1 otherwise
//
// Only the URL goes to standard output, so that a script can say
// DATABASE_URL=$(go run ./cmd/devdb start); messages go to standard error,
// each starting with "devdb: ".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"coco/internal/localpg"
)

const usage = `usage: devdb <command> [-dir DIR]

Manages the throwaway local PostgreSQL cluster kept in DIR (default .localpg).

commands:
  start           start the cluster, or find it running, and print its URL
  start-standby   start a hot standby of the cluster in DIR/standby, streaming
                  from it (and the cluster too if needed), or find it running,
                  and print the standby's URL
  stop            stop the standby, if it runs, then the cluster, keeping their
                  data; does nothing if they do not run
  clean           stop the standby and the cluster if they run, and delete
                  their data for good, logs too (as root, the data under
                  $TMPDIR or /tmp that the links in DIR point to); DIR and
                  its lock files stay, and start makes a fresh cluster there
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
	case "start", "start-standby", "stop", "clean", "url":
	default:
		fmt.Fprintf(stderr, "devdb: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("devdb "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // its messages lack the "devdb: " prefix
	dir := fs.String("dir", defaultDir, "directory of the cluster (git-ignored)")
	cmdUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: devdb %s [-dir DIR]\n", cmd)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cmdUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "devdb: %s: %v\n", cmd, err)
		cmdUsage(stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devdb: %s: unexpected argument %q\n", cmd, fs.Arg(0))
		cmdUsage(stderr)
		return 2
	}

	switch cmd {
	case "start", "start-standby":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		c, err := localpg.Start(ctx, *dir)
		if err != nil {
			return fail(stderr, err)
		}
		started(stderr, "PostgreSQL", c)
		if cmd == "start-standby" {
			if c, err = c.StartStandby(ctx); err != nil {
				return fail(stderr, err)
			}
			started(stderr, "PostgreSQL standby", c)
		}
		fmt.Fprintln(stdout, c.URL())
	case "stop":
		// The standby first: the primary's shutdown waits for its standbys.
		sdir := localpg.StandbyDir(*dir)
		stopped, err := localpg.StopDir(sdir)
		if err != nil {
			return fail(stderr, err)
		}
		if stopped {
			fmt.Fprintf(stderr, "devdb: PostgreSQL standby in %s stopped\n", sdir)
		}
		stopped, err = localpg.StopDir(*dir)
		switch {
		case err != nil:
			return fail(stderr, err)
		case stopped:
			fmt.Fprintf(stderr, "devdb: PostgreSQL in %s stopped\n", *dir)
		default:
			fmt.Fprintf(stderr, "devdb: no PostgreSQL server running in %s\n", *dir)
		}
		// Errors here only cost the hint.
		n, err1 := localpg.DiskUsage(sdir)
		m, err2 := localpg.DiskUsage(*dir)
		if err1 == nil && err2 == nil && n+m > 0 {
			clean := "make db-clean"
			if filepath.Clean(*dir) != defaultDir {
				clean += " DEVDB_DIR=" + *dir
			}
			fmt.Fprintf(stderr, "devdb: its data is kept in %s (%s); %s deletes it\n", *dir, formatSize(n+m), clean)
		}
	case "clean":
		// The standby first, lest it retry its removed primary.
		removed := false
		for _, c := range []struct{ what, dir string }{
			{"PostgreSQL standby", localpg.StandbyDir(*dir)},
			{"PostgreSQL", *dir},
		} {
			stopped, freed, err := localpg.RemoveDir(c.dir)
			if err != nil {
				return fail(stderr, err)
			}
			if stopped {
				fmt.Fprintf(stderr, "devdb: %s in %s stopped\n", c.what, c.dir)
			}
			if stopped || freed > 0 {
				fmt.Fprintf(stderr, "devdb: removed %s data in %s (%s)\n", c.what, c.dir, formatSize(freed))
				removed = true
			}
		}
		if !removed {
			fmt.Fprintf(stderr, "devdb: no PostgreSQL data in %s; nothing to remove\n", *dir)
		}
	case "url":
		c, err := localpg.Running(*dir)
		if errors.Is(err, localpg.ErrNotRunning) {
			fmt.Fprintf(stderr, "devdb: no PostgreSQL server running in %s\n", *dir)
			return 1
		}
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintln(stdout, c.URL())
	}
	return 0
}

// defaultDir is the default of -dir, the repository's git-ignored .localpg.
const defaultDir = ".localpg"

// fail says on stderr what went wrong, once prefixed with "devdb: " rather
// than also with the "localpg: " of localpg's errors, and returns exit code 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "devdb: %s\n", strings.TrimPrefix(err.Error(), "localpg: "))
	return 1
}

// formatSize formats a number of bytes in kB, MB or GB (powers of 1000).
func formatSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%d MB", (n+5e5)/1e6)
	default:
		return fmt.Sprintf("%d kB", (n+500)/1e3)
	}
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
