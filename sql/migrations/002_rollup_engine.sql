-- The rollup engine (functions, trigger, view) from the files under engine/.
-- Templates rather than tern code packages, so that schema_version names the
-- engine a database runs, and /readyz can tell. Any later change to those
-- files ships as a new migration with this same template line and the new
-- hash below, which reinstalls the engine as it then is (a test checks the
-- newest such hash against the files).
-- engine files: 0a0f2b14f8a1bcc120c602c1a34b791cacfa6b453e498747c4706ec56b9e260d
{{ template "engine/install.sql" . }}

---- create above / drop below ----

drop schema coco cascade;
