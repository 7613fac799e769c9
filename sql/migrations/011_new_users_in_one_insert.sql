-- A user's first ingest creates the user in one insert. Migration 9 sent
-- it through migration 6's protocol: the erasure, a second lookup, the
-- erasure again, coco.ensure_user's lookup and insert, and a lock: a new
-- user's ingest ran at 0.8 of the first release's. Same answers, same
-- signature.

-- As migration 9's, with a path for a user not created yet: the insert
-- creates it, and the row stays locked until this transaction ends. Then
-- the erasure record is read, under a share lock that orders this with
-- any erasure of the same id: an erasure that deleted a user of this id
-- committed before the insert could finish, so it is seen now, and one
-- that starts later cannot see the uncommitted user and records nothing.
-- erased_before is set from that read. Callers raise on null, which also
-- removes the user created here.
create or replace function coco.lock_user(p_external_id text, p_started_at timestamptz) returns uuid
language plpgsql
as $$
declare
    v_user_id uuid;
    v_erased_before boolean;
    v_erased_at timestamptz;
begin
    -- Waiting here for an erasure that deletes the user finds no row.
    select u.id into v_user_id from users u
    where u.external_id = p_external_id and u.erased_before = false
    for no key update;
    if found then
        return v_user_id;
    end if;
    insert into users (external_id, erased_before) values (p_external_id, false)
    on conflict (external_id) do nothing
    returning id into v_user_id;
    if found then
        select e.erased_at into v_erased_at from erasures e
        where e.user_hash = coco.user_hash(p_external_id)
        for share;
        if v_erased_at > p_started_at then
            return null;
        end if;
        if v_erased_at is not null then
            update users u set erased_before = true where u.id = v_user_id;
        end if;
        return v_user_id;
    end if;
    -- A user created after an erasure, or one that another transaction
    -- created or erased meanwhile.
    for attempt in 1..3 loop
        if coco.is_erased(p_external_id, p_started_at) then
            return null;
        end if;
        select u.id, u.erased_before into v_user_id, v_erased_before
        from users u where u.external_id = p_external_id for no key update;
        if found then
            if v_erased_before is null then
                update users u set erased_before = exists (
                    select from erasures e where e.user_hash = coco.user_hash(p_external_id))
                where u.id = v_user_id;
            end if;
            return v_user_id;
        end if;
        if coco.is_erased(p_external_id, p_started_at) then
            return null;
        end if;
        v_user_id := coco.ensure_user(p_external_id);
        perform from users u where u.id = v_user_id for no key update;
        if found then
            return v_user_id;
        end if;
    end loop;
    raise exception 'the user was erased and created again while this waited' using errcode = '40001';
end;
$$;

-- Migration 9's trigger read the erasures for every insert; an insert that
-- says erased_before (coco.lock_user's, which reads them itself) skips it.
-- A change of external_id always reads them.
drop trigger users_erased_before on users;

create trigger users_erased_before_insert before insert on users
for each row when (new.erased_before is null) execute function coco.users_erased_before();

create trigger users_erased_before_update before update of external_id on users
for each row execute function coco.users_erased_before();

comment on function coco.users_erased_before() is
    'Trigger function: sets users.erased_before on an insert that leaves it null, and on a change of external_id.';
