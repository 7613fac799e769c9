-- Returns the id of the user with p_external_id, creating the user first if
-- there is none. Safe under concurrent calls for the same id. Raises
-- check_violation (users_external_id_format) for an id the dashboard cannot serve.
create function coco.ensure_user(p_external_id text) returns uuid
language plpgsql
as $$
declare
    v_user_id uuid;
begin
    select u.id into v_user_id from users u where u.external_id = p_external_id;
    if found then
        return v_user_id;
    end if;

    insert into users (external_id) values (p_external_id)
    on conflict (external_id) do nothing
    returning id into v_user_id;
    if v_user_id is null then
        -- Another transaction created it between our select and insert.
        select u.id into strict v_user_id from users u where u.external_id = p_external_id;
    end if;
    return v_user_id;
end;
$$;
