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
