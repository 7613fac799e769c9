-- A single ingest does less. Migration 6 made every ingest hash the user's
-- id and look for an erasure, though almost no user was ever erased. Same
-- answers, same signatures.

-- Whether an erasure of this external_id was on record when the user was
-- created: only then can the erasure refuse the user's sessions, since an
-- erasure deletes the user it erases. Null for users created before this
-- migration: coco.lock_user fills it in the first time it locks them.
alter table users add column erased_before boolean;

comment on column users.erased_before is
    'Whether an erasure of this external_id was on record when the user was created (null: not yet known). Only such a user''s ingests look at erasures; an erasure deletes the user it erases.';

-- Set on every insert, whoever inserts (ingest, batch, psql), so the flag
-- never claims "no erasure" for a user created after one.
create function coco.users_erased_before() returns trigger
language plpgsql
as $$
begin
    new.erased_before := exists (select from erasures e where e.user_hash = coco.user_hash(new.external_id));
    return new;
end;
$$;

comment on function coco.users_erased_before() is
    'Trigger function: sets users.erased_before on insert and on a change of external_id.';

create trigger users_erased_before before insert or update of external_id on users
for each row execute function coco.users_erased_before();

-- As before; a user known never to have been erased is locked in one
-- lookup. Any other (unknown, created after an erasure, or not yet
-- flagged) takes the path of migration 6: the erasure first, then the
-- user's lock, so it queues behind an erasure in the same order as
-- coco.erase_user takes them.
create or replace function coco.lock_user(p_external_id text, p_started_at timestamptz) returns uuid
language plpgsql
as $$
declare
    v_user_id uuid;
    v_erased_before boolean;
begin
    -- Waiting here for an erasure that deletes the user finds no row.
    select u.id into v_user_id from users u
    where u.external_id = p_external_id and u.erased_before = false
    for no key update;
    if found then
        return v_user_id;
    end if;
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
