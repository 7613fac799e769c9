-- A recompute and a 304 read the user's settings without a lookup of
-- their own. Migration 4 read user_settings twice per recompute (the
-- settings in force, for the user's today, and the history again, joined
-- to every session as periods to find its local day) and once per read:
-- eleven more plan nodes in each recompute than the first release ran,
-- which cost about 15% of single ingests a second with 8 clients. Now the
-- users row keeps the history as a timeline (three arrays, oldest first),
-- which the trigger on user_settings refreshes, and the settings in force
-- at an instant are an expression over it. Same results, same signatures.

-- The timeline: a copy of the user's user_settings rows, oldest first;
-- null without any. Only coco.refresh_settings_timeline writes it.
alter table users
    add column settings_from timestamptz[],
    add column settings_time_zones text[],
    add column settings_day_starts interval[];

comment on column users.settings_from is
    'The instants of the user''s settings changes, oldest first (a copy of user_settings.effective_from that its trigger keeps); null without any. See coco.settings_timeline.';
comment on column users.settings_time_zones is
    'The time zone of each change in settings_from (a copy of user_settings.time_zone).';
comment on column users.settings_day_starts is
    'The day start of each change in settings_from (a copy of user_settings.day_starts_at).';

-- Copies the settings history of p_user_ids into their users rows. The
-- users are locked first (in id order, as coco.store_rollups does), and
-- the history is read by the next statement, so it sees every change
-- committed by a writer this one waited for.
create function coco.refresh_settings_timeline(p_user_ids uuid[]) returns void
language plpgsql
as $$
begin
    perform from users u where u.id = any (p_user_ids) order by u.id for no key update;
    update users u set
        settings_from = h.from_at,
        settings_time_zones = h.time_zones,
        settings_day_starts = h.day_starts
    from (
        select x.id,
               -- Null, not an array of one null, for a user without settings.
               array_agg(us.effective_from order by us.effective_from) filter (where us.user_id is not null) as from_at,
               array_agg(us.time_zone order by us.effective_from) filter (where us.user_id is not null) as time_zones,
               array_agg(us.day_starts_at order by us.effective_from) filter (where us.user_id is not null) as day_starts
        from (select distinct id from unnest(p_user_ids) as i(id)) as x
        left join user_settings us on us.user_id = x.id
        group by x.id
    ) as h
    where u.id = h.id
      and (u.settings_from, u.settings_time_zones, u.settings_day_starts)
          is distinct from (h.from_at, h.time_zones, h.day_starts);
end;
$$;

select coco.refresh_settings_timeline(array(select distinct user_id from user_settings));

-- As migration 4's, refreshing the timelines before the rollups.
create or replace function coco.settings_changed() returns trigger
language plpgsql
as $$
declare
    v_user_ids uuid[];
begin
    if tg_op = 'INSERT' then
        v_user_ids := array(select distinct n.user_id from new_rows n);
    elsif tg_op = 'TRUNCATE' then
        v_user_ids := array(select u.id from users u where u.settings_from is not null);
    elsif tg_op = 'DELETE' then
        v_user_ids := array(select distinct o.user_id from old_rows o);
    else
        v_user_ids := array(select n.user_id from new_rows n union select o.user_id from old_rows o);
    end if;
    perform coco.refresh_settings_timeline(v_user_ids);
    perform coco.store_rollups(v_user_ids, now(), clock_timestamp());
    return null;
end;
$$;

-- The settings timeline of user p_user_id: exactly one row, nulls for a
-- user without settings (also an unknown one).
create function coco.settings_timeline(p_user_id uuid)
returns table (from_at timestamptz[], time_zone text[], day_starts_at interval[])
language sql stable
as $$
    select u.settings_from, u.settings_time_zones, u.settings_day_starts
    from (select) as one
    left join users u on u.id = p_user_id
$$;

-- The time zone and the day start in force at p_at in a timeline: the
-- latest change at or before it (width_bucket counts the instants at or
-- before p_at), else UTC and 00:00. The one place that default lives.
create function coco.zone_at(p_from_at timestamptz[], p_time_zones text[], p_at timestamptz) returns text
language sql immutable parallel safe
return coalesce(p_time_zones[width_bucket(p_at, p_from_at)], 'UTC');

create function coco.day_start_at(p_from_at timestamptz[], p_day_starts_at interval[], p_at timestamptz) returns interval
language sql immutable parallel safe
return coalesce(p_day_starts_at[width_bucket(p_at, p_from_at)], interval '0');

create or replace function coco.settings_at(p_user_id uuid, p_at timestamptz)
returns table (time_zone text, day_starts_at interval)
language sql stable
as $$
    select coco.zone_at(t.from_at, t.time_zone, p_at), coco.day_start_at(t.from_at, t.day_starts_at, p_at)
    from coco.settings_timeline(p_user_id) t
$$;

-- coco.rollup_window for a user whose settings timeline is given: every
-- rollup rule, as migration 4 wrote them; a session's local day is read
-- in the settings in force when it started.
create function coco.rollup_window_in(
    p_user_id uuid, p_today date, p_from_at timestamptz[], p_time_zones text[], p_day_starts_at interval[]
)
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
    with scanned as (
        select s.started_at, s.duration_seconds, s.sentiment_score,
               coco.local_day(s.started_at,
                              coco.zone_at(p_from_at, p_time_zones, s.started_at),
                              coco.day_start_at(p_from_at, p_day_starts_at, s.started_at)) as day
        from sessions s
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
    select w.*
    from coco.settings_timeline(p_user_id) t
    cross join lateral coco.rollup_window_in(p_user_id, p_today, t.from_at, t.time_zone, t.day_starts_at) w
$$;

-- coco.rollup_row for a user whose settings timeline is given: the rule
-- for updated_at, as migration 4 wrote it.
create function coco.rollup_row_in(
    p_user_id uuid, p_today date, p_time_zone text, p_day_starts_at interval, p_written_at timestamptz,
    p_from_at timestamptz[], p_time_zones text[], p_day_starts interval[]
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
    from coco.rollup_window_in(p_user_id, p_today, p_from_at, p_time_zones, p_day_starts) w
    left join dashboard_rollups r on r.user_id = p_user_id
$$;

create or replace function coco.rollup_row(
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
    select n.*
    from coco.settings_timeline(p_user_id) t
    cross join lateral coco.rollup_row_in(p_user_id, p_today, p_time_zone, p_day_starts_at, p_written_at,
                                          t.from_at, t.time_zone, t.day_starts_at) n
$$;

-- As before (see migration 4), reading each user's timeline once, for the
-- user's today and for the window.
create or replace function coco.store_rollups(
    p_user_ids uuid[], p_now timestamptz, p_written_at timestamptz, p_today date default null
)
returns integer
language plpgsql
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
    -- Lateral, so each user is one index lookup whatever the statistics
    -- say (a join may be planned as a scan of every user).
    cross join lateral coco.settings_timeline(u.id) t
    cross join lateral (
        select coalesce(p_today, coco.local_day(p_now, now_in.time_zone, now_in.day_starts_at)) as today,
               now_in.time_zone, now_in.day_starts_at
        from (select coco.zone_at(t.from_at, t.time_zone, p_now) as time_zone,
                     coco.day_start_at(t.from_at, t.day_starts_at, p_now) as day_starts_at) as now_in
        -- A fence: the user's today is computed once, not again for each
        -- session the window reads.
        offset 0
    ) st
    cross join lateral coco.rollup_row_in(
        u.id, st.today, st.time_zone, st.day_starts_at, p_written_at, t.from_at, t.time_zone, t.day_starts_at) n
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
    -- rollup_row_in keeps updated_at when nothing changed: then nothing is written.
    where r.updated_at is distinct from excluded.updated_at;

    return cardinality(v_locked);
end;
$$;

-- As before (see migration 4), with the settings in force from the users
-- row the read joins anyway.
create or replace function coco.fresh_snapshot(p_external_id text, p_now timestamptz)
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
    where u.external_id = p_external_id
      and r.time_zone = coco.zone_at(u.settings_from, u.settings_time_zones, p_now)
      and r.window_end = coco.local_day(p_now, r.time_zone,
                                        coco.day_start_at(u.settings_from, u.settings_day_starts, p_now))
$$;

comment on function coco.refresh_settings_timeline(uuid[]) is
    'Copies the settings history (user_settings) of p_user_ids into their users rows (settings_from, settings_time_zones, settings_day_starts), locking the users first. The trigger on user_settings calls it; only it writes those columns.';

comment on function coco.settings_timeline(uuid) is
    'The settings history of user p_user_id as one row of three arrays, oldest first: from_at (each change''s instant), time_zone and day_starts_at; nulls for a user without changes, or unknown. Read from the users row, where coco.refresh_settings_timeline keeps it; coco.zone_at and coco.day_start_at read it.';

comment on function coco.zone_at(timestamptz[], text[], timestamptz) is
    'The time zone in force at p_at in a settings timeline (coco.settings_timeline): the zone of the latest change at or before p_at, else UTC.';

comment on function coco.day_start_at(timestamptz[], interval[], timestamptz) is
    'The day start in force at p_at in a settings timeline (coco.settings_timeline): that of the latest change at or before p_at, else 00:00.';

comment on function coco.rollup_window(uuid, date) is
    'Computes, without storing anything, user p_user_id''s seven-day rollup ending on the local day p_today (default coco.today()); a session counts on its own local day, in the settings in force when it started. select * from coco.rollup_window(user_id, coco.user_today(user_id)) is what should be stored. The rules live in coco.rollup_window_in.';

comment on function coco.rollup_window_in(uuid, date, timestamptz[], text[], interval[]) is
    'coco.rollup_window for a user whose settings timeline (coco.settings_timeline) is given: every rollup rule lives here.';

comment on function coco.rollup_row_in(uuid, date, text, interval, timestamptz, timestamptz[], text[], interval[]) is
    'coco.rollup_row for a user whose settings timeline (coco.settings_timeline) is given: the rule for a stored rollup''s updated_at lives here. coco.store_rollups uses it.';
