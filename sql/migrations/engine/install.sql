-- Installs the whole rollup engine in schema coco: every function, the trigger
-- on sessions and the analysts' view. Dropped and rebuilt as one unit, inside
-- the migration's transaction, so no stale function survives a reload.
drop schema if exists coco cascade;
create schema coco;

{{ template "engine/day.sql" . }}
{{ template "engine/tone.sql" . }}
{{ template "engine/streak.sql" . }}
{{ template "engine/rollup_window.sql" . }}
{{ template "engine/recompute_rollups.sql" . }}
{{ template "engine/sessions_trigger.sql" . }}
{{ template "engine/ensure_user.sql" . }}
{{ template "engine/ingest_session.sql" . }}
{{ template "engine/stored_snapshot.sql" . }}
{{ template "engine/dashboard_version.sql" . }}
{{ template "engine/dashboard.sql" . }}
{{ template "engine/refresh_stale_rollups.sql" . }}
{{ template "engine/dashboard_overview.sql" . }}
{{ template "engine/rollup_drift.sql" . }}
