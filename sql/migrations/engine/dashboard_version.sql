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
