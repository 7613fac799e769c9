-- Recomputes every rollup that is missing or stored for a window other than
-- the one ending on p_today (for cron or an operator after midnight UTC).
-- Returns how many users it recomputed.
create function coco.refresh_stale_rollups(p_today date default coco.today()) returns integer
language sql
as $$
    select coco.recompute_rollups(array(
        select u.id
        from users u left join dashboard_rollups r on r.user_id = u.id
        where r.window_end is distinct from p_today
    ), p_today)
$$;
