-- coco.store_rollups locked its users with "u.id = any (p_user_ids)",
-- which it plans once (force_generic_plan). On a new database the users
-- table is still small and has no statistics when that plan is made, and
-- since migration 9 widened users a scan of the whole table costs less
-- than the index: the plan stays for the life of the connection, so each
-- recompute read every user. A fresh database's ingest ran at about 0.7 of
-- the first release's, and slower with each user. Now every user is one
-- index lookup whatever the statistics say, in the recompute and in the
-- refresh of a settings timeline. Same locks, same order, same results.

-- Locks p_user_ids' users rows (those that exist) in id order, the order
-- every writer of rollups takes them in, and returns their ids in it.
-- Lateral, so that each id is an index lookup; the row lock keeps the
-- subquery from being flattened into a join the planner could scan.
create function coco.lock_users(p_user_ids uuid[]) returns uuid[]
language plpgsql
as $$
declare
    v_locked uuid[];
begin
    select coalesce(array_agg(l.id order by l.id), '{}') into v_locked
    from (select distinct i.id from unnest(p_user_ids) as i(id) order by i.id) as wanted
    cross join lateral (select u.id from users u where u.id = wanted.id for no key update) as l;
    return v_locked;
end;
$$;

comment on function coco.lock_users(uuid[]) is
    'Locks the users rows of the given ids (for no key update) one index lookup each, in id order; returns the ids found, in that order.';

-- As migration 10's, a user at a time: its join of the users to their
-- settings was planned as a scan of both tables.
create or replace function coco.refresh_settings_timeline(p_user_ids uuid[]) returns void
language plpgsql
as $$
declare
    v_user_id uuid;
begin
    foreach v_user_id in array coco.lock_users(p_user_ids) loop
        update users u set
            settings_from = h.from_at,
            settings_time_zones = h.time_zones,
            settings_day_starts = h.day_starts
        from (
            -- One row, of nulls for a user without settings.
            select array_agg(us.effective_from order by us.effective_from) as from_at,
                   array_agg(us.time_zone order by us.effective_from) as time_zones,
                   array_agg(us.day_starts_at order by us.effective_from) as day_starts
            from user_settings us
            where us.user_id = v_user_id
        ) as h
        where u.id = v_user_id
          and (u.settings_from, u.settings_time_zones, u.settings_day_starts)
              is distinct from (h.from_at, h.time_zones, h.day_starts);
    end loop;
end;
$$;

-- As migration 10's.
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
    v_locked := coco.lock_users(p_user_ids);

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
