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
