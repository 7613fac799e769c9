-- The dashboard snapshot of the user with p_external_id for the window ending
-- on p_today, plus its streak. Creates an unknown user (who gets the empty
-- state) and recomputes a rollup that is missing or was stored for another
-- window, so a read never serves an old window. Returns exactly one row.
create function coco.dashboard(p_external_id text, p_today date default coco.today())
returns table (
    window_end date,
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
#variable_conflict use_column
declare
    v_user_id uuid;
begin
    -- The common case, a known user with a rollup for today, is this one read.
    return query
        select r.window_end, coco.streak(r.daily_activity), r.daily_activity, r.daily_durations,
               r.daily_sentiment, r.last_session_at, r.avg_duration_minutes, r.current_tone, r.updated_at
        from users u join dashboard_rollups r on r.user_id = u.id
        where u.external_id = p_external_id and r.window_end = p_today;
    if found then
        return;
    end if;

    v_user_id := coco.ensure_user(p_external_id);
    perform coco.recompute_rollups(array[v_user_id], p_today);
    return query
        select r.window_end, coco.streak(r.daily_activity), r.daily_activity, r.daily_durations,
               r.daily_sentiment, r.last_session_at, r.avg_duration_minutes, r.current_tone, r.updated_at
        from dashboard_rollups r
        where r.user_id = v_user_id;
end;
$$;
