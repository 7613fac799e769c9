-- Keeps dashboard_rollups current whatever writes to sessions (the ingest
-- function, psql, a bulk load, a truncate): after each statement, every user
-- it touched is recomputed once, for today. Raises what recompute raises.
create function coco.sessions_changed() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform coco.recompute_rollups(array(select distinct n.user_id from new_rows n));
    elsif tg_op = 'TRUNCATE' then
        perform coco.recompute_rollups(array(select u.id from users u));
    elsif tg_op = 'DELETE' then
        perform coco.recompute_rollups(array(select distinct o.user_id from old_rows o));
    else
        -- An update may move a session from one user to another: both change.
        perform coco.recompute_rollups(array(
            select n.user_id from new_rows n union select o.user_id from old_rows o));
    end if;
    return null;
end;
$$;

-- Statement-level with transition tables, so a multi-row statement recomputes
-- each user once; PostgreSQL allows transition tables on one event per trigger.
create trigger sessions_after_insert after insert on sessions
    referencing new table as new_rows
    for each statement execute function coco.sessions_changed();

create trigger sessions_after_update after update on sessions
    referencing old table as old_rows new table as new_rows
    for each statement execute function coco.sessions_changed();

create trigger sessions_after_delete after delete on sessions
    referencing old table as old_rows
    for each statement execute function coco.sessions_changed();

-- TRUNCATE has no transition tables and touches every user.
create trigger sessions_after_truncate after truncate on sessions
    for each statement execute function coco.sessions_changed();
