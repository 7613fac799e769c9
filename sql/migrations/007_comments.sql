-- Comments on every function, view and table, so that \df+ coco.*,
-- \dv+ coco.* and \dt+ in psql say what each is for and how to call it.
-- Each condenses the comment above the object's latest definition in the
-- migrations before this one. A function is named by its argument types,
-- so each overload has its own. A later `create or replace` keeps the
-- comment: change it there when the behaviour changes, and comment what a
-- migration adds in that migration (comments_test.go checks).
-- Locks: COMMENT ON takes a share update exclusive lock on each table and
-- view, which reads, inserts, updates and deletes do not conflict with.

comment on schema coco is
    'coco''s rollup engine: the functions that store sessions and keep each user''s seven-day rollup current, the trigger functions behind them, and the views for analysts. \df+ coco.* and \dv+ coco.* describe each.';

-- Tables.

comment on table users is
    'One row per family member; external_id is the dashboard''s user_id (1 to 128 visible characters in Unicode NFC, see coco.valid_external_id). Deleting a row deletes the user''s sessions, rollup and settings; coco.erase_user also records the erasure, so a device cannot bring the data back.';

comment on table sessions is
    'One row per finished use-session a device posted: session_id (the device''s id, the idempotency key of every ingest), started_at, duration_seconds (0 to 86400) and sentiment_score (0 to 1). Its triggers keep dashboard_rollups current whatever writes here, coco.ingest_session, psql or a bulk load.';

comment on table dashboard_rollups is
    'The stored seven-day rollup of each user that the dashboard reads: daily arrays oldest day first, ending on window_end, the user''s local day in time_zone. The triggers on sessions and user_settings keep it current; coco.dashboard_overview shows it with the streak, coco.rollup_drift lists rows that disagree with their sessions.';

comment on table user_settings is
    'Each user''s time zone and day start over time: a row is in force from effective_from until the next row''s; before the first, or without any, the day is the UTC day from midnight. Write it with coco.put_settings, read it with coco.settings_history or coco.settings_at; its triggers recompute the rollup.';

comment on table erasures is
    'One row per erased user: the SHA-256 of the external id (coco.user_hash), never the id itself, and the instant of the latest erasure; an ingest of that user for a session that started before it is refused. Written by coco.erase_user, pruned by coco.prune_sessions.';

comment on table schema_version is
    'The schema version that coco migrate and the tern CLI keep: how many of the numbered migrations in sql/migrations this database has run.';

comment on type coco.snapshot is
    'A dashboard snapshot without its zone, as coco.stored_snapshot, coco.dashboard_snapshot and coco.dashboard return it: the stored rollup''s columns with its streak.';

-- Views.

comment on view coco.dashboard_overview is
    'One row per user for analysts: the stored rollup, its streak, whether it is stale for the user''s own day (coco.refresh_stale_rollups() brings those up to date), the zone in force and the user''s local today. For example: select * from coco.dashboard_overview where is_stale;';

comment on view coco.rollup_drift is
    'The users whose stored rollup disagrees with their sessions: it differs from a fresh coco.rollup_window for the window it is stored for, or the user has sessions and no rollup. Empty when every rollup is right; after a restore or a fix, coco recompute -all empties it.';

-- Days.

comment on function coco.day_of(timestamptz) is
    'The UTC day the instant p_at falls on, the day the previous release counts in (its calls pass it). A user''s own day is coco.local_day, or coco.user_today(user_id).';

comment on function coco.day_start(date) is
    'The instant the UTC day p_day begins: the inverse of coco.day_of. A user''s local day begins at coco.local_day_start.';

comment on function coco.today() is
    'The UTC day now: the default day of the calls kept for the previous release (coco.dashboard, coco.recompute_rollups, coco.refresh_stale_rollups(date, integer)), which take it to mean now. A user''s own today is coco.user_today(user_id).';

comment on function coco.local_day(timestamptz, text, interval) is
    'The local day the instant p_at belongs to, for a family in time zone p_time_zone whose day starts p_day_starts_at after midnight; a daylight saving day is still one day. For example: select coco.local_day(now(), ''Europe/Berlin'', ''04:00'');';

comment on function coco.local_day_start(date, text, interval) is
    'The instant the local day p_day begins, for a family in time zone p_time_zone whose day starts p_day_starts_at after midnight: the inverse of coco.local_day.';

comment on function coco.user_today(uuid, timestamptz) is
    'The local day of user p_user_id at p_now (default now()), in the settings in force then: the last day of the user''s dashboard window.';

comment on function coco.is_time_zone(text) is
    'Whether PostgreSQL knows p_name as an IANA time zone (Europe/Berlin, America/Los_Angeles, UTC), not an abbreviation such as PST or a POSIX string such as UTC+3. It reads the zone files, so callers skip it for a zone already in force.';

-- Settings.

comment on function coco.settings_at(uuid, timestamptz) is
    'The time zone and day start of user p_user_id in force at p_at: the latest change at or before it, else UTC and 00:00. Exactly one row, also for an unknown user.';

comment on function coco.settings_history(text) is
    'The settings history of the user with p_external_id, oldest first: each change''s instant, zone and day start (HH:MM); no row for a user without changes. For example: select * from coco.settings_history(''demo-user''); coco.settings_at says what is in force.';

comment on function coco.put_settings(text, text, interval, timestamptz) is
    'Records a change of the time zone and day start of the user with p_external_id (created if unknown), in force from p_effective_from; a null keeps the value in force then, and a change that changes nothing is not recorded. Raises CC422 (detail time_zone) for a zone PostgreSQL does not know, check_violation for a day start outside 00:00-12:00, and CC410 for a user erased after p_effective_from.';

comment on function coco.settings_changed() is
    'The trigger function of user_settings: after each statement, the rollup of every user it touched is recomputed once, for the user''s today (a correction in the past moves sessions to other days). Not called directly.';

-- The rollup rules.

comment on function coco.tone(numeric) is
    'The tone label of one day''s mean sentiment, rounded to 2 places: ''positive'' from 0.61, ''negative'' below 0.40, ''neutral'' otherwise, also for null (no sentiment).';

comment on function coco.streak(boolean[]) is
    'The activity streak: how many days in a row, counted back from the last element (today), are true; 0 when today is inactive. For example: select coco.streak(daily_activity) from dashboard_rollups;';

comment on function coco.rollup_window(uuid, date) is
    'Computes, without storing anything, user p_user_id''s seven-day rollup ending on the local day p_today (default coco.today()); a session counts on its own local day, in the settings in force when it started. Every rollup rule lives here: select * from coco.rollup_window(user_id, coco.user_today(user_id)) is what should be stored.';

comment on function coco.rollup_row(uuid, date, text, interval, timestamptz) is
    'The rollup of user p_user_id for the window ending on the local day p_today (in p_time_zone, day start p_day_starts_at) as it is to be stored: its updated_at is the stored one when nothing differs, else strictly later (p_written_at is the write that changed it, null when only the day moved on). An unknown user (null) gets the empty state; coco.store_rollups and coco.dashboard_at use it.';

-- Storing rollups.

comment on function coco.store_rollups(uuid[], timestamptz, timestamptz, date) is
    'Recomputes and stores the rollups of p_user_ids as of p_now, each for the user''s own local day then (or for p_today, when given), locking the users in id order first; p_written_at is the write that caused it, null for a refresh. Ids may repeat or be unknown; returns how many users it recomputed.';

comment on function coco.recompute_rollups(uuid[], date) is
    'Kept for the previous release and for psql: recomputes and stores the rollups of p_user_ids, each for the user''s own today (with a day other than the UTC today, the windows ending on that day), and returns how many. For example: select coco.recompute_rollups(array(select id from users));';

comment on function coco.refresh_stale_rollups(timestamptz, integer) is
    'Recomputes the rollups that are not current at p_now for their user (missing, or stored for another local day or zone), at most p_limit of them (null: all), and returns how many. Call it again until it returns less than p_limit, each call a short transaction; a cron every 15 minutes follows every zone''s midnight.';

comment on function coco.refresh_stale_rollups(date, integer) is
    'Kept for the previous release and for psql: select coco.refresh_stale_rollups() (or (p_limit => n)) recomputes the rollups not current for each user''s own today, and returns how many.';

comment on function coco.sessions_changed() is
    'The trigger function of sessions: after each statement, the rollup of every user it touched is recomputed once, for the user''s today, whatever wrote (psql, a bulk load, a truncate). A deletion recomputes only the users whose stored window could hold a deleted session, so pruning old history changes no rollup. Not called directly.';

-- Reads.

comment on function coco.dashboard_at(text, timestamptz) is
    'The dashboard snapshot of the user with p_external_id at p_now (default now()), with its zone: the stored one when current, else recomputed and stored (only computed in a read-only transaction or on a standby); for an unknown user the empty state, stored nowhere. Exactly one row: select * from coco.dashboard_at(''demo-user'');';

comment on function coco.fresh_snapshot(text, timestamptz) is
    'The stored snapshot of the user with p_external_id when it is current at p_now (for the user''s local today and the zone in force), with its streak and zone; no row when the user is unknown or the stored window is not current. Reads only; coco.dashboard_at computes what is missing.';

comment on function coco.stored_snapshot(text) is
    'The rollup stored for the user with p_external_id, with its streak (type coco.snapshot), whatever window it is for; no row for an unknown user or one never rolled up. Reads only.';

comment on function coco.dashboard_snapshot(text, timestamptz) is
    'Migration 003''s dashboard read, which the service no longer calls, kept until a release drops it: the coco.dashboard_at row without its zone (type coco.snapshot). coco.dashboard, kept for the previous release, reads through it.';

comment on function coco.dashboard(text, date) is
    'Kept for the previous release: its dashboard read, which passes the UTC day of its clock meaning now and gets the user''s own day (another day gives the window ending on it, for a UTC user). Exactly one row, and it creates no user; new code calls coco.dashboard_at.';

comment on function coco.dashboard_version(text, date) is
    'Kept for the previous release: its If-None-Match check, the updated_at of the snapshot coco.dashboard would return when the stored one is current; no row otherwise. Reads only.';

-- Ingest.

comment on function coco.valid_external_id(text) is
    'Whether p_external_id is an id the API accepts (httpapi.ValidExternalID): 1 to 128 characters in Unicode NFC, only assigned and visible characters, and not "." or "..". The check users_external_id_visible uses it; select external_id from users where not coco.valid_external_id(external_id) lists the ids the API refuses.';

comment on function coco.ensure_user(text) is
    'Returns the id of the user with p_external_id, creating the user first if there is none; safe under concurrent calls. Raises check_violation for an id the dashboard cannot serve; unlike coco.lock_user, it does not look at erasures.';

comment on function coco.lock_user(text, timestamptz) is
    'Locks the user with p_external_id for writing (FOR NO KEY UPDATE) and returns its id, creating the user when unknown; returns null, creating nothing, when a session starting at p_started_at falls under an erasure. coco.ingest_session and coco.put_settings call it first; only the service and operators may run it.';

comment on function coco.ingest_session(text, text, timestamptz, integer, numeric) is
    'Stores one session summary from a device, creating its user if needed: returns ''ok'' when stored, ''duplicate'' when this session_id is already stored with the same values. Raises CC409 (detail: the fields that differ) when it is stored with other values, and CC410 when the user was erased after the session started; nothing is stored then.';

comment on function coco.ingest_session(text, text, timestamptz, integer, numeric, text) is
    'Stores one session summary as the five-argument coco.ingest_session does, and records p_time_zone, the zone the device was in: when the session is stored and that zone is not the one in force at started_at, the user''s settings history gains a change at that instant. Raises CC422 (detail time_zone) for a zone PostgreSQL does not know, and what the five-argument form raises.';

comment on function coco.ingest_sessions(text[], text[], timestamptz[], integer[], numeric[], text[]) is
    'Stores a batch of session summaries, item i made of the i-th element of each array (time zones may be null), recomputing each user''s rollup once. Returns one row per item, in input order: ok, duplicate, conflict (detail names the fields that differ), invalid (detail time_zone) or gone (the user was erased after it started).';

-- Stewardship.

comment on function coco.user_hash(text) is
    'The key of p_external_id in erasures: the SHA-256 of the id in UTF-8. For example: select * from erasures where user_hash = coco.user_hash(''demo-user'');';

comment on function coco.is_erased(text, timestamptz) is
    'Whether a session of the user with p_external_id that started at p_started_at falls under an erasure. It takes a share lock on the erasure''s row, so it waits for an erasure being recorded.';

comment on function coco.erased_items(text[], timestamptz[]) is
    'The positions (from 1) of the items, user p_external_ids[i] and start p_started_ats[i], that fall under an erasure. Unlike coco.is_erased it locks nothing; coco.ingest_sessions uses it.';

comment on function coco.erase_user(text, timestamptz) is
    'Erases the user with p_external_id in one transaction (the user, every session, the rollup and the settings) and records the erasure at p_now (see erasures). Returns how many sessions were erased, 0 for a user erased before and not seen since, null for a user never seen; only the service and operators may run it.';

comment on function coco.prune_sessions(timestamptz, integer, timestamptz) is
    'Deletes at most p_limit sessions that started before p_before, and the erasure records older than it, and returns the counts; no rollup changes. Raises CC422 (detail older_than) for a cut-off less than 8 days before p_now; call again until sessions is less than p_limit, each call a short transaction.';

comment on function coco.grant_analyst(text) is
    'Makes p_role a role for analysts (created NOLOGIN when missing): it may read the tables and the coco views and run what reads, and write nothing; give people their own login roles in it (create role alice login in role <p_role>). Idempotent; needs CREATEROLE to create the role.';
