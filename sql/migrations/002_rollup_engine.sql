-- The rollup engine (functions, trigger, view) from the files under engine/.
-- Templates rather than tern code packages, so that schema_version names the
-- engine a database runs, and /readyz can tell. Any later change to those
-- files ships as a new migration with this same template line and the new
-- hash below, which reinstalls the engine as it then is (a test checks the
-- newest such hash against the files).
-- engine files: de19a3f2521ca6420452793280452fbe8812a8c17c87c90f63b1f23b7c9cb46b
{{ template "engine/install.sql" . }}

---- create above / drop below ----

drop schema coco cascade;
