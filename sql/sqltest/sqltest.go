// Package sqltest gives each test its own migrated PostgreSQL database,
// cloned by pgtestdb from a template built once per migrations hash.
package sqltest

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // pgtestdb talks database/sql with driver "pgx"
	"github.com/peterldowns/pgtestdb"

	"coco/sql/migrations"
)

// ServerURL is the server tests create their databases on: TEST_DATABASE_URL,
// else DATABASE_URL. `make test` starts a throwaway server when both are unset.
func ServerURL(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	t.Fatal("TEST_DATABASE_URL is not set: run `make test`, or `go run ./cmd/devdb start` and export what it prints")
	return ""
}

// URL creates a fresh migrated database on the server at serverURL and
// returns its connection string; the database is dropped when the test passes.
func URL(t testing.TB, serverURL string) string {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("parse server URL: %v", err)
	}
	password, _ := u.User.Password()
	conf := pgtestdb.Config{
		DriverName:                "pgx",
		Host:                      u.Hostname(),
		Port:                      u.Port(),
		User:                      u.User.Username(),
		Password:                  password,
		Database:                  dbName(u),
		Options:                   u.RawQuery,
		ForceTerminateConnections: true,
	}
	if conf.Port == "" {
		conf.Port = "5432"
	}
	return pgtestdb.Custom(t, conf, Migrator{}).URL()
}

func dbName(u *url.URL) string {
	if len(u.Path) > 1 {
		return u.Path[1:]
	}
	return "postgres"
}

// EmptyURL creates a database with no tables on the test server, with the
// options of CREATE DATABASE in with (such as "template template0
// lc_ctype 'C.UTF-8'"; "" for none), and returns its URL. The database is
// dropped when the test ends.
func EmptyURL(t testing.TB, with string) string {
	t.Helper()
	server := ServerURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	var name string
	if err := conn.QueryRow(ctx, `select 'coco_empty_' || md5(random()::text)`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "create database "+name+" "+with); err != nil {
		t.Fatalf("create database %s %s: %v", name, with, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "drop database "+name+" with (force)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("parse the server URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Pool returns a pool on a fresh migrated database of its own, closed when
// the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t, ServerURL(t)))
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Migrator applies coco's embedded tern migrations to pgtestdb's template.
type Migrator struct{}

// Hash covers every migration, so editing one rebuilds the template.
func (Migrator) Hash() (string, error) { return migrations.Hash(migrations.Files) }

// Migrate runs the same migrations the binary runs.
func (Migrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	cfg, err := pgx.ParseConfig(conf.URL())
	if err != nil {
		return err
	}
	_, err = migrations.Migrate(ctx, cfg, migrations.Options{})
	return err
}

// WithMigration returns coco's migrations plus one more, numbered after the
// last, with sql as its body: a later release's migration, for tests of
// upgrades.
func WithMigration(t testing.TB, sql string) fs.FS {
	t.Helper()
	fsys := fstest.MapFS{}
	names, err := fs.Glob(migrations.Files, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		body, err := fs.ReadFile(migrations.Files, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: body}
	}
	next := fmt.Sprintf("%03d_later_release.sql", migrations.ExpectedVersion()+1)
	fsys[next] = &fstest.MapFile{Data: []byte(sql)}
	return fsys
}
