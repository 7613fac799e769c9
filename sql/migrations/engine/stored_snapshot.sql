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
