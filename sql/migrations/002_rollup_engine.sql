-- The rollup engine (functions, trigger, view) from the files under engine/.
-- Templates rather than tern code packages, so that schema_version names the
-- engine a database runs, and /readyz can tell. Any later change to those
-- files ships as a new migration with this same template line and the new
-- hash below, which reinstalls the engine as it then is (a test checks the
-- newest such hash against the files).
-- engine files: 0de4ec100cad84a831376e6e4069b67f3d2197416f57218979f1e4e665a469c6
{{ template "engine/install.sql" . }}

---- create above / drop below ----

drop schema coco cascade;
