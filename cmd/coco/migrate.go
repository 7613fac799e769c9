package main

import (
	"context"
	"fmt"
	"time"

	"coco/sql/migrations"
)

func runMigrate(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("migrate", "[-lock-timeout D] [-wait D]", dbVarsHelp+`
Applies the migrations embedded in this binary (the same files as
sql/migrations, for the tern CLI) and prints the versions before and after.
Safe while the previous release serves: every lock is waited for at most
-lock-timeout, so requests queued behind the migration stall no longer than
that; a migration that times out is rolled back and retried with backoff
for up to -wait, and then coco says which session held the lock (pid and
transaction age). Safe to run again and from several machines at once: one
migrates, the others find nothing left to do. A database at a newer
version than this binary is refused, never migrated down.
`)
	lockTimeout := fs.Duration("lock-timeout", 500*time.Millisecond, "longest wait for any one lock")
	wait := fs.Duration("wait", time.Minute, "how long to keep retrying after lock timeouts")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	pool, code := c.connect(ctx, "migrate")
	if pool == nil {
		return code
	}
	defer pool.Close()
	res, err := migrateSchema(ctx, pool, migrations.Options{
		LockTimeout: *lockTimeout,
		Wait:        *wait,
		Retrying: func(attempt int, blocked string) {
			fmt.Fprintf(c.stderr, "coco migrate: attempt %d timed out %s; retrying\n", attempt, blocked)
		},
	})
	if err != nil {
		return c.fail("migrate", err)
	}
	if res.From == res.To {
		fmt.Fprintf(c.stdout, "schema already at version %d: nothing to do\n", res.To)
	} else {
		fmt.Fprintf(c.stdout, "schema migrated from version %d to %d\n", res.From, res.To)
	}
	return exitOK
}
