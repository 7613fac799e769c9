-- The rollup engine (functions, trigger, view) from the files under engine/.
-- Any later change to those files ships as a new migration with this same
-- line, which reinstalls the engine as it then is.
{{ template "engine/install.sql" . }}

---- create above / drop below ----

drop schema coco cascade;
