package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"coco/httpapi"
	"coco/sql/store"
)

// userFlag is the -user flag of the commands about one user: a valid
// external id, not "*".
func (c cli) userFlag(cmd string, user string) int {
	if user == "" || user == "*" {
		fmt.Fprintf(c.stderr, "coco %s: -user must name one user\n", cmd)
		return exitUsage
	}
	if err := httpapi.ValidExternalID(user); err != nil {
		fmt.Fprintf(c.stderr, "coco %s: -user must be an external user id: %v\n", cmd, err)
		return exitUsage
	}
	return -1
}

func runErase(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("erase", "-user ID", dbVarsHelp+`
Erases the user with this external id in one transaction: every session, the
rollup, the settings and the user row. The erasure is recorded (a SHA-256 of
the id and the instant, never the id), so later ingests of sessions that
started before now are refused (410, "gone" in a batch) and an offline device
cannot bring the data back; sessions that start later begin a new history.
Exit status 1 for a user never seen.
`)
	user := fs.String("user", "", "external `id` of the user to erase")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	if code := c.userFlag("erase", *user); code >= 0 {
		return code
	}
	pool, code := c.connect(ctx, "erase")
	if pool == nil {
		return code
	}
	defer pool.Close()
	n, known, err := store.NewStore(pool).Erase(ctx, *user, time.Now())
	if err != nil {
		return c.fail("erase", err)
	}
	if !known {
		return c.fail("erase", fmt.Errorf("no user with external id %q", *user))
	}
	fmt.Fprintf(c.stdout, "erased %s: %d sessions\n", *user, n)
	return exitOK
}

func runExport(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("export", "-user ID", dbVarsHelp+`
Prints everything stored about the user with this external id, as one JSON
document (the same as GET /internal/users/{id}/export): the user, the
settings history, every session with when it was received, and the current
dashboard. Streamed: a long history costs no memory. Exit status 1 for an
unknown or erased user.
`)
	user := fs.String("user", "", "external `id` of the user to export")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	if code := c.userFlag("export", *user); code >= 0 {
		return code
	}
	pool, code := c.connect(ctx, "export")
	if pool == nil {
		return code
	}
	defer pool.Close()
	found, n, err := httpapi.ExportUser(ctx, store.NewStore(pool), c.stdout, *user, time.Now())
	if err != nil {
		return c.fail("export", err)
	}
	if !found {
		return c.fail("export", fmt.Errorf("no user with external id %q", *user))
	}
	fmt.Fprintf(c.stderr, "exported %s: %d sessions\n", *user, n)
	return exitOK
}

func runPrune(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("prune", "-older-than AGE [-batch N]", dbVarsHelp+`
Deletes the sessions that started more than AGE ago, in batches of -batch
sessions, each its own short transaction (ingests of the same users wait
for one batch at most), and the erasure records older than that. No rollup
changes: AGE must be at least 8 days, more than any window. Prints a line
per batch. From cron, daily:

  0 3 * * *  coco prune -older-than 400d
`)
	olderThan := fs.String("older-than", "", "delete sessions that started longer ago than this `age`: days (400d) or a Go duration (9600h)")
	batch := fs.Int("batch", 10_000, "sessions deleted per transaction")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	age, err := parseAge(*olderThan)
	if err != nil || *batch < 1 {
		fmt.Fprintf(c.stderr, "coco prune: -older-than must be an age such as 400d or 9600h, and -batch at least 1\n")
		fs.Usage()
		return exitUsage
	}
	pool, code := c.connect(ctx, "prune")
	if pool == nil {
		return code
	}
	defer pool.Close()
	st := store.NewStore(pool)
	now := time.Now()
	before := now.Add(-age)
	var total store.Pruned
	progress := c.progress("prune", "sessions")
	for {
		p, err := st.Prune(ctx, before, *batch, now)
		var invalid *store.InvalidError
		if errors.As(err, &invalid) {
			return c.fail("prune", fmt.Errorf("-older-than %s: the cut-off must be at least 8 days ago, so that no window loses a session", *olderThan))
		}
		if err != nil {
			return c.fail("prune", fmt.Errorf("after %d sessions: %w", total.Sessions, err))
		}
		total.Sessions += p.Sessions
		total.Erasures += p.Erasures
		if p.Sessions > 0 {
			progress(total.Sessions)
		}
		if p.Sessions < *batch {
			break
		}
	}
	fmt.Fprintf(c.stdout, "pruned %d sessions and %d erasure records that started before %s\n",
		total.Sessions, total.Erasures, before.UTC().Format(time.RFC3339))
	return exitOK
}

// parseAge reads 400d (days) or a Go duration such as 9600h.
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad age %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad age %q", s)
	}
	return d, nil
}

func runGrantAnalyst(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("grant-analyst", "-role NAME", dbVarsHelp+`
Creates the role NAME (NOLOGIN) if it does not exist, and lets it read the
tables and the coco views and run the functions that only read; it can write
nothing, and cannot erase or prune. Safe to run again, after each migrate.
Then give each analyst a login role in it:

  create role alice login password '...' in role NAME;

Creating the role needs a database user with CREATEROLE.
`)
	role := fs.String("role", "", "name of the analysts' `role`")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	if *role == "" {
		fmt.Fprintln(c.stderr, "coco grant-analyst: -role is required")
		fs.Usage()
		return exitUsage
	}
	pool, code := c.connect(ctx, "grant-analyst")
	if pool == nil {
		return code
	}
	defer pool.Close()
	if err := store.NewStore(pool).GrantAnalyst(ctx, *role); err != nil {
		return c.fail("grant-analyst", err)
	}
	fmt.Fprintf(c.stdout, "role %s reads users, sessions, dashboard_rollups, user_settings, erasures and the coco views\n", *role)
	return exitOK
}
