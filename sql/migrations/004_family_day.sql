-- The family's own day: each user has a time zone and a day start, with a
-- history, and every day in the engine is that user's local day.
-- Locks: only a short one on dashboard_rollups, taken first; sessions is
-- not locked (its triggers stay, their function is replaced in place).

-- The zone the stored window was computed in, so a read can tell a window
-- made for another zone, and the dashboard can say which days it shows.
-- Existing rollups are UTC windows, which the default says.
alter table dashboard_rollups add column time_zone text not null default 'UTC';

-- A user's settings over time: each row is in force from effective_from
-- until the next row's. Before the first row, or without any, a user's day
-- is the UTC day from midnight, exactly as before this migration.
create table user_settings (
    user_id uuid not null,
    effective_from timestamptz not null,
    -- An IANA name PostgreSQL knows (coco.is_time_zone). The functions that
    -- write here check it; a row typed in psql with an unknown zone fails
    -- when the trigger computes with it.
    time_zone text not null,
    -- How long after local midnight the family's day begins: with 04:00 a
    -- session at 01:30 counts for the evening before.
    day_starts_at interval not null,
    created_at timestamptz not null default now(),
    constraint user_settings_pkey primary key (user_id, effective_from),
    constraint user_settings_user_id_fkey foreign key (user_id) references users (id) on delete cascade,
    constraint user_settings_time_zone_length check (char_length(time_zone) between 1 and 64),
    constraint user_settings_day_starts_at_range check (
        day_starts_at between interval '0' and interval '12 hours'
        and date_trunc('minute', day_starts_at) = day_starts_at
    )
);

-- Whether PostgreSQL knows p_name as an IANA time zone (Europe/Berlin,
-- America/Los_Angeles, UTC), not an abbreviation such as PST or a POSIX
-- string such as UTC+3. It reads the zone files, so callers skip it for a
-- zone already in force.
create function coco.is_time_zone(p_name text) returns boolean
language sql stable strict
return exists (select from pg_timezone_names where name = p_name);

-- The local day the instant p_at belongs to, for a family in p_time_zone
-- whose day starts p_day_starts_at after midnight. A daylight saving day is
-- 23 or 25 hours long and still one day.
create function coco.local_day(p_at timestamptz, p_time_zone text, p_day_starts_at interval) returns date
language sql immutable parallel safe strict
return ((p_at at time zone p_time_zone) - p_day_starts_at)::date;

-- The instant the local day p_day begins, for the same family.
create function coco.local_day_start(p_day date, p_time_zone text, p_day_starts_at interval) returns timestamptz
language sql immutable parallel safe strict
return (p_day + p_day_starts_at) at time zone p_time_zone;

-- The settings of user p_user_id in force at p_at: the latest change at or
-- before it, else UTC and 00:00. Exactly one row, also for an unknown user.
create function coco.settings_at(p_user_id uuid, p_at timestamptz)
returns table (time_zone text, day_starts_at interval)
language sql stable
as $$
    select coalesce(s.time_zone, 'UTC'), coalesce(s.day_starts_at, interval '0')
    from (select) as one
    left join lateral (
        select us.time_zone, us.day_starts_at
        from user_settings us
        where us.user_id = p_user_id and us.effective_from <= p_at
        order by us.effective_from desc
        limit 1
    ) s on true
$$;

-- The local day of user p_user_id at p_now: the last day of the user's
-- dashboard window.
create function coco.user_today(p_user_id uuid, p_now timestamptz default now()) returns date
language sql stable
return (select coco.local_day(p_now, s.time_zone, s.day_starts_at) from coco.settings_at(p_user_id, p_now) s);

-- Computes, without storing anything, one user's seven-day rollup ending on
-- the local day p_today: every rollup rule, as before, but a session counts
-- on its own local day, read with the settings in force when it started (so
-- a later move or correction never moves it, and a late sync lands on the
-- day it started). The scan reads started_at from a day before the window
-- to a day after it, which covers every offset and day start, through the
-- (user_id, started_at) index; the local day then filters.
create or replace function coco.rollup_window(p_user_id uuid, p_today date default coco.today())
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
    with periods as (
        -- Each settings row from its instant to the next one's; UTC and
        -- 00:00 before the first.
        select p.from_at, lead(p.from_at) over (order by p.from_at) as until_at, p.time_zone, p.day_starts_at
        from (
            select '-infinity'::timestamptz as from_at, 'UTC'::text as time_zone, interval '0' as day_starts_at
            union all
            select us.effective_from, us.time_zone, us.day_starts_at from user_settings us where us.user_id = p_user_id
        ) as p
    ),
    scanned as (
        select s.started_at, s.duration_seconds, s.sentiment_score,
               coco.local_day(s.started_at, p.time_zone, p.day_starts_at) as day
        from sessions s
        join periods p on s.started_at >= p.from_at and (p.until_at is null or s.started_at < p.until_at)
        where s.user_id = p_user_id
          and s.started_at >= (p_today - 7)::timestamp at time zone 'UTC'
          and s.started_at < (p_today + 2)::timestamp at time zone 'UTC'
    ),
    window_sessions as (
        select * from scanned where scanned.day between p_today - 6 and p_today
    ),
    per_day as (
        -- A session counts on the local day it started, even if it ends the next day.
        select ws.day, sum(ws.duration_seconds) as seconds, avg(ws.sentiment_score) as sentiment
        from window_sessions ws
        group by ws.day
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

-- The rollup of user p_user_id for the window ending on the local day
-- p_today in p_time_zone (day start p_day_starts_at), as it is to be
-- stored. Its updated_at is the stored one when nothing differs; otherwise
-- the latest of the stored one plus a microsecond (strictly increasing, so
-- the user and updated_at name one snapshot), the start of the window's
-- last day, and p_written_at, the write that changed it (null when only
-- the day moved on). A new day's window therefore gets the same updated_at
-- wherever it is computed, a standby included. An unknown user (null) gets
-- the empty state.
create function coco.rollup_row(
    p_user_id uuid, p_today date, p_time_zone text, p_day_starts_at interval, p_written_at timestamptz
)
returns table (
    window_end date,
    time_zone text,
    daily_activity boolean[],
    daily_durations integer[],
    daily_sentiment numeric(4,2)[],
    last_session_at timestamptz,
    avg_duration_minutes integer,
    current_tone text,
    updated_at timestamptz
)
language sql stable
as $$
    select w.window_end, p_time_zone, w.daily_activity, w.daily_durations, w.daily_sentiment,
           w.last_session_at, w.avg_duration_minutes, w.current_tone,
           case
               when (r.window_end, r.time_zone, r.daily_activity, r.daily_durations, r.daily_sentiment,
                     r.last_session_at, r.avg_duration_minutes, r.current_tone)
                    is not distinct from
                    (w.window_end, p_time_zone, w.daily_activity, w.daily_durations, w.daily_sentiment,
                     w.last_session_at, w.avg_duration_minutes, w.current_tone)
               then r.updated_at
               else greatest(r.updated_at + interval '1 microsecond',
                             coco.local_day_start(p_today, p_time_zone, p_day_starts_at),
                             p_written_at)
           end
    from coco.rollup_window(p_user_id, p_today) w
    left join dashboard_rollups r on r.user_id = p_user_id
$$;

-- Recomputes and stores the rollups of p_user_ids as of p_now: each user's
-- window ends on the user's own local day then (or on p_today for all, when
-- given), in the zone in force then. p_written_at is the write that caused
-- it, null for a refresh (see coco.rollup_row). Ids may repeat or be
-- unknown. Returns how many users it recomputed.
--
-- Why the lock: under READ COMMITTED two transactions writing one user's
-- sessions or settings each compute from a snapshot without the other's
-- row, and the later upsert would overwrite the earlier with a rollup that
-- misses a committed change. Locking the user rows first (in id order, so
-- statements touching many users cannot deadlock) makes the second wait for
-- the first to commit; its next statement then sees that change. A row lock,
-- not an advisory lock: it lives in the row, so a bulk insert across many
-- users cannot exhaust the shared lock table; FOR NO KEY UPDATE does not
-- block the key-share locks that inserts into sessions take.
create function coco.store_rollups(
    p_user_ids uuid[], p_now timestamptz, p_written_at timestamptz, p_today date default null
)
returns integer
language plpgsql
-- PL/pgSQL would otherwise plan the upsert afresh on every call (a custom
-- plan looks cheaper for a known array), which costs more than running it.
set plan_cache_mode = force_generic_plan
as $$
declare
    v_locked uuid[];
begin
    select coalesce(array_agg(locked.id), '{}') into v_locked
    from (select u.id from users u where u.id = any (p_user_ids) order by u.id for no key update) as locked;

    -- A new statement, so a new snapshot: it sees every change committed by
    -- the transactions we just waited for.
    insert into dashboard_rollups as r (
        user_id, window_end, time_zone, daily_activity, daily_durations, daily_sentiment,
        last_session_at, avg_duration_minutes, current_tone, updated_at)
    select u.id, n.window_end, n.time_zone, n.daily_activity, n.daily_durations, n.daily_sentiment,
           n.last_session_at, n.avg_duration_minutes, n.current_tone, n.updated_at
    from unnest(v_locked) as u(id)
    cross join lateral coco.settings_at(u.id, p_now) st
    cross join lateral coco.rollup_row(
        u.id, coalesce(p_today, coco.local_day(p_now, st.time_zone, st.day_starts_at)),
        st.time_zone, st.day_starts_at, p_written_at) n
    on conflict (user_id) do update set
        window_end = excluded.window_end,
        time_zone = excluded.time_zone,
        daily_activity = excluded.daily_activity,
        daily_durations = excluded.daily_durations,
        daily_sentiment = excluded.daily_sentiment,
        last_session_at = excluded.last_session_at,
        avg_duration_minutes = excluded.avg_duration_minutes,
        current_tone = excluded.current_tone,
        updated_at = excluded.updated_at
    -- rollup_row keeps updated_at when nothing changed: then nothing is written.
    where r.updated_at is distinct from excluded.updated_at;

    return cardinality(v_locked);
end;
$$;

-- Kept for the first release's binary and for psql: recompute_rollups(ids)
-- stores each user's window for the user's own today; with a day other than
-- the UTC today, the windows ending on that day.
create or replace function coco.recompute_rollups(p_user_ids uuid[], p_today date default coco.today())
returns integer
language sql
as $$
    select coco.store_rollups(p_user_ids, now(), clock_timestamp(), nullif(p_today, coco.today()))
$$;

-- Keeps dashboard_rollups current whatever writes to sessions: after each
-- statement, every user it touched is recomputed once, for the user's today.
create or replace function coco.sessions_changed() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform coco.store_rollups(array(select distinct n.user_id from new_rows n), now(), clock_timestamp());
    elsif tg_op = 'TRUNCATE' then
        perform coco.store_rollups(array(select u.id from users u), now(), clock_timestamp());
    elsif tg_op = 'DELETE' then
        perform coco.store_rollups(array(select distinct o.user_id from old_rows o), now(), clock_timestamp());
    else
        -- An update may move a session from one user to another: both change.
        perform coco.store_rollups(array(
            select n.user_id from new_rows n union select o.user_id from old_rows o), now(), clock_timestamp());
    end if;
    return null;
end;
$$;

-- The same for user_settings: a change in force from now moves no stored
-- day but may start a new today; a correction in the past moves sessions.
create function coco.settings_changed() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform coco.store_rollups(array(select distinct n.user_id from new_rows n), now(), clock_timestamp());
    elsif tg_op = 'TRUNCATE' then
        perform coco.store_rollups(array(select u.id from users u), now(), clock_timestamp());
    elsif tg_op = 'DELETE' then
        perform coco.store_rollups(array(select distinct o.user_id from old_rows o), now(), clock_timestamp());
    else
        perform coco.store_rollups(array(
            select n.user_id from new_rows n union select o.user_id from old_rows o), now(), clock_timestamp());
    end if;
    return null;
end;
$$;

create trigger user_settings_after_insert after insert on user_settings
    referencing new table as new_rows
    for each statement execute function coco.settings_changed();

create trigger user_settings_after_update after update on user_settings
    referencing old table as old_rows new table as new_rows
    for each statement execute function coco.settings_changed();

create trigger user_settings_after_delete after delete on user_settings
    referencing old table as old_rows
    for each statement execute function coco.settings_changed();

create trigger user_settings_after_truncate after truncate on user_settings
    for each statement execute function coco.settings_changed();

-- The stored snapshot of the user with p_external_id when it is current at
-- p_now: for the user's local today and the zone in force. No row when the
-- user is unknown or the stored window is not current. Reads only; a
-- set-returning SQL function, so callers' queries inline it.
create function coco.fresh_snapshot(p_external_id text, p_now timestamptz)
returns table (
    window_end date,
    time_zone text,
    streak_days integer,
    daily_activity boolean[],
    daily_durations integer[],
    daily_sentiment numeric(4,2)[],
    last_session_at timestamptz,
    avg_duration_minutes integer,
    current_tone text,
    updated_at timestamptz
)
language sql stable
as $$
    select r.window_end, r.time_zone, coco.streak(r.daily_activity), r.daily_activity, r.daily_durations,
           r.daily_sentiment, r.last_session_at, r.avg_duration_minutes, r.current_tone, r.updated_at
    from users u
    join dashboard_rollups r on r.user_id = u.id
    cross join lateral coco.settings_at(u.id, p_now) st
    where u.external_id = p_external_id
      and r.window_end = coco.local_day(p_now, st.time_zone, st.day_starts_at)
      and r.time_zone = st.time_zone
$$;

-- The dashboard snapshot of the user with p_external_id at p_now, with the
-- zone it is in: the stored one when current; for a known user whose stored
-- window is not current, recomputed and stored (on a primary) or computed
-- only (on a standby, which cannot write; the same row the primary will
-- store); for an unknown user, the empty state, stored nowhere. Exactly one
-- row.
create function coco.dashboard_at(p_external_id text, p_now timestamptz default now())
returns table (
    window_end date,
    time_zone text,
    streak_days integer,
    daily_activity boolean[],
    daily_durations integer[],
    daily_sentiment numeric(4,2)[],
    last_session_at timestamptz,
    avg_duration_minutes integer,
    current_tone text,
    updated_at timestamptz
)
language plpgsql
as $$
declare
    v_user_id uuid;
    v_zone text;
    v_day_starts_at interval;
begin
    return query select * from coco.fresh_snapshot(p_external_id, p_now);
    if found then
        return;
    end if;
    select u.id into v_user_id from users u where u.external_id = p_external_id;
    if v_user_id is not null and not pg_is_in_recovery() then
        perform coco.store_rollups(array[v_user_id], p_now, null);
        return query select * from coco.fresh_snapshot(p_external_id, p_now);
        return;
    end if;
    select s.time_zone, s.day_starts_at into v_zone, v_day_starts_at from coco.settings_at(v_user_id, p_now) s;
    -- The casts keep numeric(4,2), which a function's result drops.
    return query
    select n.window_end, n.time_zone, coco.streak(n.daily_activity), n.daily_activity, n.daily_durations,
           n.daily_sentiment::numeric(4,2)[], n.last_session_at, n.avg_duration_minutes, n.current_tone, n.updated_at
    from coco.rollup_row(v_user_id, coco.local_day(p_now, v_zone, v_day_starts_at), v_zone, v_day_starts_at, null) n;
end;
$$;

-- Replaced to follow the user's own day (migration 3's read, which the next
-- release no longer calls; kept until a release drops it).
create or replace function coco.dashboard_snapshot(p_external_id text, p_now timestamptz default now())
returns setof coco.snapshot
language sql
as $$
    select d.window_end, d.streak_days, d.daily_activity, d.daily_durations, d.daily_sentiment::numeric(4,2)[],
           d.last_session_at, d.avg_duration_minutes, d.current_tone, d.updated_at
    from coco.dashboard_at(p_external_id, p_now) d
$$;

-- The first release's calls pass the UTC day of their clock, meaning "now";
-- they now get the user's own day. Another day means the window ending on
-- it for a UTC user, as before.
create or replace function coco.dashboard(p_external_id text, p_today date default coco.today())
returns setof coco.snapshot
language sql
as $$
    select * from coco.dashboard_snapshot(p_external_id,
        case when p_today = coco.today() then now() else coco.day_start(p_today) end)
$$;

create or replace function coco.dashboard_version(p_external_id text, p_today date default coco.today())
returns setof timestamptz
language sql stable
as $$
    select f.updated_at
    from coco.fresh_snapshot(p_external_id,
        case when p_today = coco.today() then now() else coco.day_start(p_today) end) f
$$;

-- Recomputes the rollups that are not current at p_now for their user:
-- missing, or stored for another local day or zone. At most p_limit of them
-- (null: all), so a caller keeps each transaction's locks short by calling
-- again until it returns less. A cron every 15 minutes follows every
-- zone's midnight, :30 and :45 ones included. Returns how many it
-- recomputed.
create function coco.refresh_stale_rollups(p_now timestamptz, p_limit integer)
returns integer
language sql
as $$
    select coco.store_rollups(array(
        select u.id
        from users u
        left join dashboard_rollups r on r.user_id = u.id
        cross join lateral coco.settings_at(u.id, p_now) st
        where (r.window_end, r.time_zone)
              is distinct from (coco.local_day(p_now, st.time_zone, st.day_starts_at), st.time_zone)
        order by u.id
        limit p_limit
    ), p_now, null)
$$;

-- Kept for the first release's binary and for psql (refresh_stale_rollups()
-- or (p_limit => n)): now each user's own today.
create or replace function coco.refresh_stale_rollups(p_today date default coco.today(), p_limit integer default null)
returns integer
language sql
as $$
    select coco.refresh_stale_rollups(
        case when p_today = coco.today() then now() else coco.day_start(p_today) end, p_limit)
$$;

-- One row per user for analysts in psql: the stored rollup, its streak, and
-- whether it is stale for the user's own day; then the zone in force and
-- the user's local today.
create or replace view coco.dashboard_overview as
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
    (r.window_end, r.time_zone)
        is distinct from (coco.local_day(now(), st.time_zone, st.day_starts_at), st.time_zone) as is_stale,
    r.updated_at,
    st.time_zone,
    coco.local_day(now(), st.time_zone, st.day_starts_at) as local_today
from users u
left join dashboard_rollups r on r.user_id = u.id
cross join lateral coco.settings_at(u.id, now()) st;

-- Stores one session summary as the five-argument form does, and records
-- p_time_zone, the zone the device was in when the session started: when
-- the session is stored (ok) and that zone is not the one in force at
-- started_at, the user's history gains a change at that instant (keeping
-- day_starts_at). A duplicate changes nothing. Raises CC422 (detail
-- time_zone) for a zone PostgreSQL does not know, and what the five-argument
-- form raises.
create function coco.ingest_session(
    p_session_id text,
    p_user_external_id text,
    p_started_at timestamptz,
    p_duration_seconds integer,
    p_sentiment_score numeric,
    p_time_zone text
) returns text
language plpgsql
as $$
declare
    v_status text;
    v_user_id uuid;
    v_zone text;
    v_day_starts_at interval;
begin
    v_status := coco.ingest_session(p_session_id, p_user_external_id, p_started_at, p_duration_seconds, p_sentiment_score);
    if p_time_zone is null then
        return v_status;
    end if;
    select u.id into strict v_user_id from users u where u.external_id = p_user_external_id;
    select s.time_zone, s.day_starts_at into v_zone, v_day_starts_at from coco.settings_at(v_user_id, p_started_at) s;
    if p_time_zone = v_zone then
        return v_status;
    end if;
    if not coco.is_time_zone(p_time_zone) then
        -- Raising rolls back the session too: a request with a bad field stores nothing.
        raise exception 'unknown time zone' using errcode = 'CC422', detail = 'time_zone';
    end if;
    if v_status = 'ok' then
        insert into user_settings (user_id, effective_from, time_zone, day_starts_at)
        values (v_user_id, p_started_at, p_time_zone, v_day_starts_at)
        on conflict (user_id, effective_from) do nothing;
    end if;
    return v_status;
end;
$$;

-- Records a change of the settings of the user with p_external_id (created
-- if unknown), in force from p_effective_from: p_time_zone and
-- p_day_starts_at, a null one keeping the value in force at that instant.
-- A change that changes nothing is not recorded; one at the instant of an
-- earlier change replaces it. The trigger on user_settings recomputes the
-- rollup. Raises CC422 (detail time_zone) for a zone PostgreSQL does not
-- know, and check_violation for a day start outside 00:00-12:00.
create function coco.put_settings(
    p_external_id text, p_time_zone text, p_day_starts_at interval, p_effective_from timestamptz
) returns void
language plpgsql
as $$
declare
    v_user_id uuid := coco.ensure_user(p_external_id);
    v_zone text;
    v_day_starts_at interval;
begin
    -- Serialized with this user's ingests and other changes, so the values
    -- in force are read after they commit.
    perform from users u where u.id = v_user_id for no key update;
    select s.time_zone, s.day_starts_at into v_zone, v_day_starts_at
    from coco.settings_at(v_user_id, p_effective_from) s;
    if p_time_zone is not null and p_time_zone <> v_zone and not coco.is_time_zone(p_time_zone) then
        raise exception 'unknown time zone' using errcode = 'CC422', detail = 'time_zone';
    end if;
    if coalesce(p_time_zone, v_zone) = v_zone and coalesce(p_day_starts_at, v_day_starts_at) = v_day_starts_at then
        return;
    end if;
    insert into user_settings as us (user_id, effective_from, time_zone, day_starts_at)
    values (v_user_id, p_effective_from, coalesce(p_time_zone, v_zone), coalesce(p_day_starts_at, v_day_starts_at))
    on conflict (user_id, effective_from) do update
        set time_zone = excluded.time_zone, day_starts_at = excluded.day_starts_at;
end;
$$;

-- The settings history of the user with p_external_id, oldest first: each
-- change's instant, zone and day start (HH:MM). No row for a user without
-- changes; coco.settings_at says what is in force.
create function coco.settings_history(p_external_id text)
returns table (effective_from timestamptz, time_zone text, day_starts_at text)
language sql stable
as $$
    select s.effective_from, s.time_zone, to_char(s.day_starts_at, 'HH24:MI')
    from users u
    join user_settings s on s.user_id = u.id
    where u.external_id = p_external_id
    order by s.effective_from
$$;
