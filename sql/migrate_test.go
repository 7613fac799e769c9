package sql_test

import (
	"io/fs"
	"regexp"
	"testing"
	"testing/fstest"

	"coco/sql"
	"coco/sql/sqltest"
)

func TestExpectedVersionMatchesMigratedDatabase(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	want := sql.ExpectedVersion()
	files, err := fs.Glob(sql.Migrations, "[0-9][0-9][0-9]_*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if int(want) != len(files) {
		t.Errorf("ExpectedVersion() = %d, want one per numbered migration file (%d: %v)", want, len(files), files)
	}
	var recorded int32
	if err := pool.QueryRow(t.Context(), `select version from public.schema_version`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != want {
		t.Errorf("tern recorded version %d in a migrated database, want ExpectedVersion() = %d", recorded, want)
	}
	if got, err := sql.NewStore(pool).SchemaVersion(t.Context()); err != nil || got != want {
		t.Errorf("Store.SchemaVersion() = %d, %v; want %d", got, err, want)
	}
}

func TestMigrationsHash(t *testing.T) {
	t.Parallel()

	first, err := sql.MigrationsHash()
	if err != nil {
		t.Fatal(err)
	}
	second, err := sql.MigrationsHash()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 64 || first != second {
		t.Errorf("MigrationsHash() = %q then %q, want the same 64 hex digits twice", first, second)
	}
	if same, err := sql.HashFS(sql.Migrations); err != nil || same != first {
		t.Errorf("hash of the embedded migrations = %q, %v; want MigrationsHash() = %q", same, err, first)
	}

	base := func() fstest.MapFS {
		return fstest.MapFS{
			"001_tables.sql":     {Data: []byte("create table t ();")},
			"002_engine.sql":     {Data: []byte(`{{ template "engine/install.sql" . }}`)},
			"engine/install.sql": {Data: []byte(`{{ template "engine/x.sql" . }}`)},
			"engine/x.sql":       {Data: []byte("create function coco.x() returns int return 1;")},
		}
	}
	baseHash, err := sql.HashFS(base())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(fstest.MapFS)
		same   bool
	}{
		{"nothing changed", func(fstest.MapFS) {}, true},
		{"an engine file's content", func(m fstest.MapFS) {
			m["engine/x.sql"] = &fstest.MapFile{Data: []byte("create function coco.x() returns int return 2;")}
		}, false},
		{"an engine file renamed", func(m fstest.MapFS) {
			m["engine/y.sql"] = m["engine/x.sql"]
			delete(m, "engine/x.sql")
		}, false},
		{"an engine file added", func(m fstest.MapFS) {
			m["engine/z.sql"] = &fstest.MapFile{Data: []byte("select 1;")}
		}, false},
		{"a migration's content", func(m fstest.MapFS) {
			m["001_tables.sql"] = &fstest.MapFile{Data: []byte("create table t (a int);")}
		}, false},
		{"bytes moved across a file boundary", func(m fstest.MapFS) {
			m["engine/install.sql"] = &fstest.MapFile{Data: []byte(`{{ template "engine/x.sql" . }}c`)}
			m["engine/x.sql"] = &fstest.MapFile{Data: []byte("reate function coco.x() returns int return 1;")}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			c.change(m)
			got, err := sql.HashFS(m)
			if err != nil {
				t.Fatal(err)
			}
			if (got == baseHash) != c.same {
				t.Errorf("hash after %s changed = %v, want changed = %v", c.name, got != baseHash, !c.same)
			}
		})
	}
}

// An engine file changed without a migration would reach new databases (and
// the test template) but never the deployed ones. So the newest migration
// that installs the engine records the hash of the files it installs.
func TestEngineChangesShipAsAMigration(t *testing.T) {
	t.Parallel()
	engine, err := fs.Sub(sql.Migrations, "engine")
	if err != nil {
		t.Fatal(err)
	}
	want, err := sql.HashFS(engine)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(sql.Migrations, "[0-9][0-9][0-9]_*.sql")
	if err != nil {
		t.Fatal(err)
	}
	recorded := regexp.MustCompile(`(?m)^-- engine files: ([0-9a-f]{64})$`)
	for i := len(names) - 1; i >= 0; i-- {
		body, err := fs.ReadFile(sql.Migrations, names[i])
		if err != nil {
			t.Fatal(err)
		}
		m := recorded.FindSubmatch(body)
		if m == nil {
			continue
		}
		if string(m[1]) != want {
			t.Errorf("the engine files changed since %s installed them: add a migration with the line\n"+
				"{{ template \"engine/install.sql\" . }}\nand the comment\n-- engine files: %s", names[i], want)
		}
		return
	}
	t.Errorf("no migration records the engine files' hash; want a line \"-- engine files: %s\"", want)
}
