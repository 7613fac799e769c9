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
