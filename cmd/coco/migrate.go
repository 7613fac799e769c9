package main

import (
	"context"
	"fmt"
)

func runMigrate(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("migrate", "", dbVarsHelp+`
Applies the migrations embedded in this binary (the same files as
sql/migrations, for the tern CLI) and prints the version reached. Safe to run
again and from several machines at once: tern holds an advisory lock, and a
database already at this version is left alone. A database at a newer
version than this binary is refused, never migrated down.
`)
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	pool, code := c.connect(ctx, "migrate")
	if pool == nil {
		return code
	}
	defer pool.Close()
	from, to, err := migrateSchema(ctx, pool)
	if err != nil {
		return c.fail("migrate", err)
	}
	if from == to {
		fmt.Fprintf(c.stdout, "schema already at version %d\n", to)
	} else {
		fmt.Fprintf(c.stdout, "schema migrated from version %d to %d\n", from, to)
	}
	return exitOK
}
