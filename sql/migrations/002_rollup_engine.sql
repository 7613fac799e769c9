-- The rollup engine as the first release shipped it: functions, the trigger on
-- sessions and the analysts' view, in schema coco. Frozen, like every numbered
-- migration: later releases change the engine in new migrations, with
-- `create or replace`, so a fresh database replays exactly what an upgraded
-- one ran (see the README, "SQL engine").
-- Installs the whole rollup engine in schema coco: every function, the trigger
-- on sessions and the analysts' view. Dropped and rebuilt as one unit, inside
-- the migration's transaction, so no stale function survives a reload.
drop schema if exists coco cascade;
create schema coco;

-- The one place that maps an instant to the day it counts on, and a day back
-- to the instant it starts. Today every user's day is the UTC day; a per-user
-- time zone would change these two functions and nothing else.
create function coco.day_of(p_at timestamptz) returns date
language sql immutable parallel safe strict
return (p_at at time zone 'UTC')::date;

create function coco.day_start(p_day date) returns timestamptz
language sql immutable parallel safe strict
return p_day::timestamp at time zone 'UTC';

-- The day a rollup is computed for when the caller does not pin one.
create function coco.today() returns date
language sql stable parallel safe
return coco.day_of(now());

-- The tone label for one day's mean sentiment (already rounded to 2 places).
-- Returns 'positive' from 0.61, 'negative' below 0.40, 'neutral' otherwise,
-- including when there is no sentiment at all (null).
create function coco.tone(p_sentiment numeric) returns text
language sql immutable parallel safe
return case
    when p_sentiment >= 0.61 then 'positive'
    when p_sentiment < 0.40 then 'negative'
    else 'neutral'
end;

-- The activity streak: how many days in a row, counted back from the last
-- element (today), are true. Returns 0 when today is inactive.
create function coco.streak(p_daily_activity boolean[]) returns integer
language sql immutable parallel safe strict
return cardinality(p_daily_activity) - coalesce(
    (select max(i) from generate_subscripts(p_daily_activity, 1) as i where not p_daily_activity[i]),
    0
);

-- Computes, without storing anything, one user's seven-day rollup ending on
-- p_today: the daily arrays (oldest day first), the end of the latest-started
-- session, the mean of the non-zero daily minutes and the current tone.
-- Every rollup rule lives here; recompute_rollups stores what this returns.
create function coco.rollup_window(p_user_id uuid, p_today date default coco.today())
returns table (
    window_end date,
    daily_activity boolean[],
    daily_durations integer[],
    daily_sentiment numeric(4,2)[],
    last_session_at timestamptz,
    avg_duration_minutes integer,
    current_tone text
)
language sql stable parallel safe
as $$
    with window_sessions as (
        -- A range on started_at, so the (user_id, started_at) index bounds the
        -- scan to the window however long the user's history is.
        select s.started_at, s.duration_seconds, s.sentiment_score
        from sessions s
        where s.user_id = p_user_id
          and s.started_at >= coco.day_start(p_today - 6)
          and s.started_at < coco.day_start(p_today + 1)
    ),
    per_day as (
        -- A session counts on the day it started, even if it ends the next day.
        select coco.day_of(started_at) as day,
               sum(duration_seconds) as seconds,
               avg(sentiment_score) as sentiment
        from window_sessions
        group by 1
    ),
    daily as (
        -- numeric round() rounds half away from zero: half up for these
        -- non-negative values (90 s -> 2 min, 0.125 -> 0.13).
        select d.day,
               p.day is not null as active,
               coalesce(round(p.seconds / 60.0), 0)::integer as minutes,
               round(p.sentiment, 2)::numeric(4,2) as sentiment
        from generate_series(p_today - 6, p_today, interval '1 day') as g(day_ts)
        cross join lateral (select g.day_ts::date as day) as d
        left join per_day p on p.day = d.day
    )
    select
        p_today,
        array_agg(daily.active order by daily.day),
        array_agg(daily.minutes order by daily.day),
        array_agg(daily.sentiment order by daily.day),
        (select ws.started_at + make_interval(secs => ws.duration_seconds)
           from window_sessions ws
          order by ws.started_at desc, ws.duration_seconds desc
          limit 1),
        coalesce(round(avg(daily.minutes) filter (where daily.minutes > 0)), 0)::integer,
        coco.tone((array_agg(daily.sentiment order by daily.day desc)
                     filter (where daily.sentiment is not null))[1])
    from daily
$$;

-- Recomputes and stores the rollups of p_user_ids for the window ending on
-- p_today; ids may repeat or be unknown. Returns how many users it recomputed.
--
-- Why the lock: under READ COMMITTED two transactions writing sessions of one
-- user each compute from a snapshot without the other's row, and the later
-- upsert would overwrite the earlier with a rollup that misses a committed
-- session. Locking the user row first makes the second wait for the first to
-- commit; its next statement then sees that session. Rows are locked in id
-- order so a statement touching many users cannot deadlock with another. A row
-- lock (not an advisory lock) because it lives in the row, not in the shared
-- lock table, so a bulk insert across many users cannot exhaust it; FOR NO KEY
-- UPDATE does not block the key-share locks that inserts into sessions take.
create function coco.recompute_rollups(p_user_ids uuid[], p_today date default coco.today())
returns integer
language plpgsql
-- PL/pgSQL would otherwise plan the upsert afresh on every call (a custom
-- plan looks cheaper for a known array), which cost more than running it.
set plan_cache_mode = force_generic_plan
as $$
declare
    v_locked uuid[];
begin
    select coalesce(array_agg(locked.id), '{}') into v_locked
    from (select u.id from users u where u.id = any (p_user_ids) order by u.id for no key update) as locked;

    -- A new statement, so a new snapshot: it sees every session committed by
    -- the transactions we just waited for.
    insert into dashboard_rollups as r (
        user_id, window_end, daily_activity, daily_durations, daily_sentiment,
        last_session_at, avg_duration_minutes, current_tone, updated_at)
    select u.id, w.window_end, w.daily_activity, w.daily_durations, w.daily_sentiment,
           w.last_session_at, w.avg_duration_minutes, w.current_tone, clock_timestamp()
    from unnest(v_locked) as u(id)
    cross join lateral coco.rollup_window(u.id, p_today) as w
    on conflict (user_id) do update set
        window_end = excluded.window_end,
        daily_activity = excluded.daily_activity,
        daily_durations = excluded.daily_durations,
        daily_sentiment = excluded.daily_sentiment,
        last_session_at = excluded.last_session_at,
        avg_duration_minutes = excluded.avg_duration_minutes,
        current_tone = excluded.current_tone,
        -- Strictly increasing per user, even if two writers share a
        -- transaction start or the clock steps back: (user, updated_at)
        -- names one snapshot, which the dashboard's ETag relies on.
        updated_at = greatest(excluded.updated_at, r.updated_at + interval '1 microsecond')
    -- An unchanged rollup keeps its updated_at, so the dashboard's lastUpdated
    -- and ETag move only when a number or the window does.
    where (r.window_end, r.daily_activity, r.daily_durations, r.daily_sentiment,
           r.last_session_at, r.avg_duration_minutes, r.current_tone)
          is distinct from
          (excluded.window_end, excluded.daily_activity, excluded.daily_durations, excluded.daily_sentiment,
           excluded.last_session_at, excluded.avg_duration_minutes, excluded.current_tone);

    return cardinality(v_locked);
end;
$$;

-- Keeps dashboard_rollups current whatever writes to sessions (the ingest
-- function, psql, a bulk load, a truncate): after each statement, every user
-- it touched is recomputed once, for today. Raises what recompute raises.
create function coco.sessions_changed() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform coco.recompute_rollups(array(select distinct n.user_id from new_rows n));
    elsif tg_op = 'TRUNCATE' then
        perform coco.recompute_rollups(array(select u.id from users u));
    elsif tg_op = 'DELETE' then
        perform coco.recompute_rollups(array(select distinct o.user_id from old_rows o));
    else
        -- An update may move a session from one user to another: both change.
        perform coco.recompute_rollups(array(
            select n.user_id from new_rows n union select o.user_id from old_rows o));
    end if;
    return null;
end;
$$;

-- Statement-level with transition tables, so a multi-row statement recomputes
-- each user once; PostgreSQL allows transition tables on one event per trigger.
create trigger sessions_after_insert after insert on sessions
    referencing new table as new_rows
    for each statement execute function coco.sessions_changed();

create trigger sessions_after_update after update on sessions
    referencing old table as old_rows new table as new_rows
    for each statement execute function coco.sessions_changed();

create trigger sessions_after_delete after delete on sessions
    referencing old table as old_rows
    for each statement execute function coco.sessions_changed();

-- TRUNCATE has no transition tables and touches every user.
create trigger sessions_after_truncate after truncate on sessions
    for each statement execute function coco.sessions_changed();

-- Returns the id of the user with p_external_id, creating the user first if
-- there is none. Safe under concurrent calls for the same id. Raises
-- check_violation (users_external_id_format) for an id the dashboard cannot serve.
create function coco.ensure_user(p_external_id text) returns uuid
language plpgsql
as $$
declare
    v_user_id uuid;
begin
    select u.id into v_user_id from users u where u.external_id = p_external_id;
    if found then
        return v_user_id;
    end if;

    insert into users (external_id) values (p_external_id)
    on conflict (external_id) do nothing
    returning id into v_user_id;
    if v_user_id is null then
        -- Another transaction created it between our select and insert.
        select u.id into strict v_user_id from users u where u.external_id = p_external_id;
    end if;
    return v_user_id;
end;
$$;

-- Stores one session summary from the device, creating its user if needed.
-- Returns 'ok' when stored, 'duplicate' when this session_id is already stored
-- with the same values (the same instant in any offset counts as the same).
-- Raises CC409 when the session_id is stored with other values, naming the
-- fields that differ in the detail; nothing is changed then.
create function coco.ingest_session(
    p_session_id text,
    p_user_external_id text,
    p_started_at timestamptz,
    p_duration_seconds integer,
    p_sentiment_score numeric
) returns text
language plpgsql
as $$
declare
    v_stored record;
    v_differs text[];
begin
    select u.external_id, s.started_at, s.duration_seconds, s.sentiment_score into v_stored
    from sessions s join users u on u.id = s.user_id
    where s.session_id = p_session_id;

    if not found then
        -- The trigger on sessions recomputes the user's rollup.
        insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
        values (p_session_id, coco.ensure_user(p_user_external_id), p_started_at, p_duration_seconds, p_sentiment_score)
        on conflict (session_id) do nothing;
        if found then
            return 'ok';
        end if;

        -- A concurrent ingest of the same session_id committed first.
        select u.external_id, s.started_at, s.duration_seconds, s.sentiment_score into strict v_stored
        from sessions s join users u on u.id = s.user_id
        where s.session_id = p_session_id;
    end if;

    -- is distinct from, not <>: a null argument differs from the stored value.
    v_differs := array_remove(array[
        case when v_stored.external_id is distinct from p_user_external_id then 'user_external_id' end,
        case when v_stored.started_at is distinct from p_started_at then 'started_at' end,
        case when v_stored.duration_seconds is distinct from p_duration_seconds then 'duration_seconds' end,
        case when v_stored.sentiment_score is distinct from p_sentiment_score then 'sentiment_score' end
    ], null);
    if cardinality(v_differs) = 0 then
        return 'duplicate';
    end if;

    -- Raising (not returning) rolls back a user this call may have created.
    raise exception 'session_id is already stored with different values'
        using errcode = 'CC409', detail = array_to_string(v_differs, ', ');
end;
$$;

-- The rollup stored for the user with p_external_id, with its streak (the
-- dashboard's columns, type coco.snapshot), whatever window it is for; no row for an unknown user
-- or one never rolled up. Reads only. A set-returning SQL function, so the
-- planner inlines it into its callers' queries.
create type coco.snapshot as (
    window_end date,
    streak_days integer,
    daily_activity boolean[],
    daily_durations integer[],
    daily_sentiment numeric(4,2)[],
    last_session_at timestamptz,
    avg_duration_minutes integer,
    current_tone text,
    updated_at timestamptz
);

create function coco.stored_snapshot(p_external_id text)
returns setof coco.snapshot
language sql stable
as $$
    select r.window_end, coco.streak(r.daily_activity), r.daily_activity, r.daily_durations,
           r.daily_sentiment, r.last_session_at, r.avg_duration_minutes, r.current_tone, r.updated_at
    from users u join dashboard_rollups r on r.user_id = u.id
    where u.external_id = p_external_id
$$;

-- The updated_at of the snapshot coco.dashboard would return for
-- p_external_id on p_today, when the stored rollup is already for that
-- window; no row otherwise (the user is unknown or the window outdated, and
-- coco.dashboard recomputes). Reads only: the cheap check behind If-None-Match.
-- A set-returning SQL function, so the planner inlines it into the caller's
-- (prepared) query instead of planning it anew at every call.
create function coco.dashboard_version(p_external_id text, p_today date default coco.today())
returns setof timestamptz
language sql stable
as $$
    select s.updated_at from coco.stored_snapshot(p_external_id) s where s.window_end = p_today
$$;

-- The dashboard snapshot of the user with p_external_id for the window ending
-- on p_today, plus its streak. Creates an unknown user (who gets the empty
-- state) and recomputes a rollup that is missing or was stored for another
-- window, so a read never serves an old window. Returns exactly one row.
create function coco.dashboard(p_external_id text, p_today date default coco.today())
returns setof coco.snapshot
language plpgsql
as $$
begin
    -- The common case, a rollup already stored for this window, is one read.
    return query select * from coco.stored_snapshot(p_external_id) s where s.window_end = p_today;
    if not found then
        perform coco.recompute_rollups(array[coco.ensure_user(p_external_id)], p_today);
        return query select * from coco.stored_snapshot(p_external_id);
    end if;
end;
$$;

-- Recomputes the rollups that are missing or stored for a window other than
-- the one ending on p_today (for cron or an operator after midnight UTC), at
-- most p_limit of them when it is given, so a caller can keep each
-- transaction's locks short by calling again until it returns less.
-- Returns how many users it recomputed.
create function coco.refresh_stale_rollups(p_today date default coco.today(), p_limit integer default null)
returns integer
language sql
as $$
    select coco.recompute_rollups(array(
        select u.id
        from users u left join dashboard_rollups r on r.user_id = u.id
        where r.window_end is distinct from p_today
        order by u.id
        limit p_limit
    ), p_today)
$$;

-- One row per user for analysts in psql: the stored rollup, its streak, and
-- whether it is stale (missing, or stored for a window that no longer ends
-- today; coco.refresh_stale_rollups() brings those up to date).
create view coco.dashboard_overview as
select
    u.external_id,
    coco.streak(r.daily_activity) as streak_days,
    r.daily_activity,
    r.daily_durations,
    r.daily_sentiment,
    r.avg_duration_minutes,
    r.current_tone,
    r.last_session_at,
    r.window_end,
    r.window_end is distinct from coco.today() as is_stale,
    r.updated_at
from users u
left join dashboard_rollups r on r.user_id = u.id;

-- The users whose stored rollup disagrees with their sessions: it differs
-- from a fresh coco.rollup_window for the window it is stored for, or the
-- user has sessions and no rollup at all. Empty when every rollup is right;
-- after a restore or a fix, `coco recompute -all` empties it.
create view coco.rollup_drift as
select u.external_id, r.window_end
from users u
join dashboard_rollups r on r.user_id = u.id
cross join lateral coco.rollup_window(r.user_id, r.window_end) w
where (r.daily_activity, r.daily_durations, r.daily_sentiment,
       r.last_session_at, r.avg_duration_minutes, r.current_tone)
      is distinct from
      (w.daily_activity, w.daily_durations, w.daily_sentiment,
       w.last_session_at, w.avg_duration_minutes, w.current_tone)
union all
select u.external_id, null
from users u
where exists (select from sessions s where s.user_id = u.id)
  and not exists (select from dashboard_rollups r where r.user_id = u.id);


---- create above / drop below ----

drop schema coco cascade;
