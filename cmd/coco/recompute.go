package main

import (
	"context"
	"fmt"
	"time"

	"coco/sql/store"
)

func runRecompute(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("recompute", "-user ID | -all | -stale", dbVarsHelp+`
Rebuilds rollups from the stored sessions, for each user's own today (in the
user's time zone), with the same SQL the ingest trigger runs. Give exactly
one of the flags. -stale, from cron every 15 minutes, follows every zone's
midnight.
`)
	user := fs.String("user", "", "rebuild the rollup of the user with this external `id`")
	all := fs.Bool("all", false, "rebuild every user's rollup")
	stale := fs.Bool("stale", false, "rebuild only the rollups that are missing or not for the user's current day and zone")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	chosen := 0
	for _, set := range []bool{*user != "", *all, *stale} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		fmt.Fprintln(c.stderr, "coco recompute: give exactly one of -user, -all and -stale")
		fs.Usage()
		return exitUsage
	}
	pool, code := c.connect(ctx, "recompute")
	if pool == nil {
		return code
	}
	defer pool.Close()
	st := store.NewStore(pool)

	switch {
	case *user != "":
		found, err := st.RecomputeUser(ctx, *user)
		if err != nil {
			return c.fail("recompute", err)
		}
		if !found {
			return c.fail("recompute", fmt.Errorf("no user with external id %q", *user))
		}
		fmt.Fprintf(c.stdout, "recomputed the rollup of %s\n", *user)
	case *all:
		n, err := st.RecomputeAll(ctx, c.progress("recompute", "rollups"))
		if err != nil {
			return c.fail("recompute", err)
		}
		fmt.Fprintf(c.stdout, "recomputed %d rollups\n", n)
	case *stale:
		n, err := st.RefreshStale(ctx, time.Now(), c.progress("recompute", "stale rollups"))
		if err != nil {
			return c.fail("recompute", err)
		}
		fmt.Fprintf(c.stdout, "recomputed %d stale rollups\n", n)
	}
	return exitOK
}
