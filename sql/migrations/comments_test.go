package migrations_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"coco/sql/sqltest"
)

// Analysts and operators learn the schema in psql: \df+ coco.*, \dv+ and
// \dt+ show each object's comment. So every function and procedure in
// schema coco, every view in coco and public, and every table in public
// has one, and a migration that adds an object comments it too. Objects
// that belong to an extension (pgcrypto's functions, say) are the
// extension's to describe.
func TestEveryObjectHasAComment(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)

	rows, err := pool.Query(t.Context(), `
		with objects as (
			select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end as kind,
			       p.oid::regprocedure::text as name,
			       obj_description(p.oid, 'pg_proc') as description,
			       'pg_proc'::regclass as catalog, p.oid
			from pg_proc p
			where p.pronamespace = 'coco'::regnamespace
			union all
			select case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
			       c.oid::regclass::text,
			       obj_description(c.oid, 'pg_class'),
			       'pg_class'::regclass, c.oid
			from pg_class c
			where (c.relkind in ('v', 'm') and c.relnamespace in ('coco'::regnamespace, 'public'::regnamespace))
			   or (c.relkind in ('r', 'p') and c.relnamespace = 'public'::regnamespace)
		)
		select o.kind, o.name, coalesce(btrim(o.description) <> '', false)
		from objects o
		where not exists (select from pg_depend d
		                   where d.classid = o.catalog and d.objid = o.oid and d.deptype = 'e')
		order by o.kind, o.name`)
	if err != nil {
		t.Fatalf("list the schema's objects: %v", err)
	}
	type object struct {
		Kind, Name string
		Commented  bool
	}
	objects, err := pgx.CollectRows(rows, pgx.RowToStructByPos[object])
	if err != nil {
		t.Fatalf("list the schema's objects: %v", err)
	}

	var missing []string
	kinds := map[string]int{}
	for _, o := range objects {
		kinds[o.Kind]++
		if !o.Commented {
			missing = append(missing, o.Kind+" "+o.Name)
		}
	}
	// A query that found nothing would pass whatever the migrations do.
	if kinds["function"] == 0 || kinds["view"] == 0 || kinds["table"] == 0 {
		t.Fatalf("found %v objects in schemas coco and public, want functions, views and tables", kinds)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d objects have no comment, so \\df+ or \\dv+ in psql cannot explain them:\n\t%s\n"+
			"add a COMMENT ON for each, in the migration that creates it (the full signature for a function)",
			len(missing), len(objects), strings.Join(missing, "\n\t"))
	}
}
