// Package sql holds coco's schema and rollup engine (the SQL under
// migrations/, embedded in the binary) and the Go calls into it.
package sql

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations
var embedded embed.FS

// Migrations is the tern migration folder: NNN_name.sql files at the top,
// the engine's function files (tern templates) below it.
var Migrations = mustSub(embedded, "migrations")

// VersionTable is where tern records the schema version, for the tern CLI
// (tern.conf) and the binary alike.
const VersionTable = "public.schema_version"

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Migrate brings the database behind conn to the newest embedded migration.
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	if err := m.LoadMigrations(Migrations); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// ExpectedVersion is the schema version this binary's migrations end at.
func ExpectedVersion() int32 { return expectedVersion }

// expectedVersion is counted once: the migrations are embedded, so a
// malformed set is a broken build, not a runtime condition.
var expectedVersion = func() int32 {
	names, err := migrate.FindMigrations(Migrations)
	if err != nil {
		panic(fmt.Sprintf("embedded migrations: %v", err))
	}
	return int32(len(names))
}()

// MigrationsHash identifies the content of every embedded SQL file, engine
// files included, so a change to any of them yields a new hash.
func MigrationsHash() (string, error) { return hashFS(Migrations) }

// hashFS hashes the path and content of every file in fsys, subfolders included.
func hashFS(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(body))
		h.Write(body)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
