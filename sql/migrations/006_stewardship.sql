-- Stewardship of family data: erasure that sticks, retention, and reads for
-- an export that write nothing.

-- A record of each erased user: the SHA-256 of the external id, never the
-- id itself, and the instant of the latest erasure. An ingest of that user
-- for a session that started before it is refused, so an offline device
-- cannot bring the data back; later sessions begin a new history. Pruned
-- with the sessions it protects against (coco.prune_sessions).
create table erasures (
    user_hash bytea not null,
    erased_at timestamptz not null,
    constraint erasures_pkey primary key (user_hash),
    constraint erasures_user_hash_sha256 check (octet_length(user_hash) = 32)
);

-- The key of p_external_id in erasures.
create function coco.user_hash(p_external_id text) returns bytea
language sql immutable parallel safe strict
return sha256(convert_to(p_external_id, 'UTF8'));

-- Whether a session of the user with p_external_id that started at
-- p_started_at falls under an erasure. It takes a share lock on the
-- erasure's row, so it waits for an erasure being recorded and then reads
-- its instant.
create function coco.is_erased(p_external_id text, p_started_at timestamptz) returns boolean
language sql
as $$
    select coalesce((select e.erased_at > p_started_at from erasures e
                      where e.user_hash = coco.user_hash(p_external_id) for share), false)
$$;

-- Locks the user with p_external_id for writing (FOR NO KEY UPDATE) and
-- returns its id, creating the user when unknown; returns null, creating
-- nothing, when the session starting at p_started_at falls under an
-- erasure. The erasure is read again after waiting for the user's lock: an
-- erasure that committed meanwhile deleted the user, and its record is
-- visible then; a user is only created once that second look finds none.
create function coco.lock_user(p_external_id text, p_started_at timestamptz) returns uuid
language plpgsql
as $$
declare
    v_user_id uuid;
begin
    for attempt in 1..3 loop
        if coco.is_erased(p_external_id, p_started_at) then
            return null;
        end if;
        select u.id into v_user_id from users u where u.external_id = p_external_id for no key update;
        if found then
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

-- As before (ok, duplicate, or CC409 naming the differing fields), and
-- raises CC410 when the user was erased after the session started: nothing
-- is stored then.
create or replace function coco.ingest_session(
    p_session_id text,
    p_user_external_id text,
    p_started_at timestamptz,
    p_duration_seconds integer,
    p_sentiment_score numeric
) returns text
language plpgsql
as $$
declare
    v_stored record;
    v_user_id uuid;
    v_differs text[];
begin
    select u.external_id, s.started_at, s.duration_seconds, s.sentiment_score into v_stored
    from sessions s join users u on u.id = s.user_id
    where s.session_id = p_session_id;

    if not found then
        v_user_id := coco.lock_user(p_user_external_id, p_started_at);
        if v_user_id is null then
            raise exception 'user erased' using errcode = 'CC410';
        end if;
        -- The trigger on sessions recomputes the user's rollup.
        insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
        values (p_session_id, v_user_id, p_started_at, p_duration_seconds, p_sentiment_score)
        on conflict (session_id) do nothing;
        if found then
            return 'ok';
        end if;

        -- A concurrent ingest of the same session_id committed first.
        select u.external_id, s.started_at, s.duration_seconds, s.sentiment_score into strict v_stored
        from sessions s join users u on u.id = s.user_id
        where s.session_id = p_session_id;
    end if;

    -- is distinct from, not <>: a null argument differs from the stored value.
    v_differs := array_remove(array[
        case when v_stored.external_id is distinct from p_user_external_id then 'user_external_id' end,
        case when v_stored.started_at is distinct from p_started_at then 'started_at' end,
        case when v_stored.duration_seconds is distinct from p_duration_seconds then 'duration_seconds' end,
        case when v_stored.sentiment_score is distinct from p_sentiment_score then 'sentiment_score' end
    ], null);
    if cardinality(v_differs) = 0 then
        return 'duplicate';
    end if;

    -- Raising (not returning) rolls back a user this call may have created.
    raise exception 'session_id is already stored with different values'
        using errcode = 'CC409', detail = array_to_string(v_differs, ', ');
end;
$$;

-- The positions (from 1) of the items, user p_external_ids[i] and start
-- p_started_ats[i], that fall under an erasure. Unlike coco.is_erased it
-- locks nothing: coco.ingest_sessions reads the erasures again once it
-- holds its users, and an erasure that waits for them erases what it
-- stores. Each user's id is hashed once.
create function coco.erased_items(p_external_ids text[], p_started_ats timestamptz[]) returns bigint[]
language sql
as $$
    select array(
        with hashed as (
            select d.ext, coco.user_hash(d.ext) as user_hash
            from (select distinct x from unnest(p_external_ids) x) as d(ext)
        ),
        erased as (
            select e.user_hash, e.erased_at from erasures e
            where e.user_hash in (select hashed.user_hash from hashed)
        )
        select i.ord
        from unnest(p_external_ids, p_started_ats) with ordinality as i(ext, started, ord)
        join hashed h on h.ext = i.ext
        join erased er on er.user_hash = h.user_hash
        where er.erased_at > i.started)
$$;

-- As before, and an item whose user was erased after it started is 'gone'
-- (nothing of it stored, its user not created again).
create or replace function coco.ingest_sessions(
    p_session_ids text[],
    p_user_external_ids text[],
    p_started_ats timestamptz[],
    p_durations integer[],
    p_sentiments numeric[],
    p_time_zones text[]
) returns table (ord integer, status text, detail text)
language plpgsql
as $$
declare
    v_bad_zones text[];
    v_gone bigint[];
    v_created uuid[];
    v_missing integer;
    v_inserted text[];
begin
    -- Zones not already in use are looked up once, all together (reading
    -- the zone files is the costly part).
    v_bad_zones := array(
        select z.name
        from (select distinct tz as name from unnest(p_time_zones) tz where tz is not null) z
        where not exists (select from user_settings us where us.time_zone = z.name)
          and not coco.is_time_zone(z.name));

    -- Deadlock-free with other batches, single ingests and erasures: users
    -- are created before any user is locked (in name order, so two batches
    -- creating the same users wait for each other in turn), then every
    -- user is locked in id order, and only then are sessions inserted.
    v_gone := coco.erased_items(p_user_external_ids, p_started_ats);
    with created as (
        insert into users (external_id)
        select distinct e.ext
        from unnest(p_user_external_ids, p_time_zones) with ordinality as e(ext, tz, ord)
        where (e.tz is null or e.tz <> all (v_bad_zones)) and e.ord <> all (v_gone)
        order by e.ext
        on conflict (external_id) do nothing
        returning id
    )
    select array_agg(created.id) into v_created from created;
    perform from users u where u.external_id = any (p_user_external_ids) order by u.id for no key update;

    -- An erasure that committed before those locks is seen now; one that
    -- waits for them erases what this stores. A user created above for
    -- items that turn out erased is removed again, and a user deleted by an
    -- erasure before it could be locked sends the whole batch round again.
    v_gone := coco.erased_items(p_user_external_ids, p_started_ats);
    delete from users u
    where u.id = any (v_created)
      and not exists (select from unnest(p_user_external_ids) with ordinality as e(ext, ord)
                       where e.ext = u.external_id and e.ord <> all (v_gone));
    select count(*) into v_missing
    from (select distinct e.ext
            from unnest(p_user_external_ids, p_time_zones) with ordinality as e(ext, tz, ord)
           where (e.tz is null or e.tz <> all (v_bad_zones)) and e.ord <> all (v_gone)) e
    where not exists (select from users u where u.external_id = e.ext);
    if v_missing > 0 then
        raise exception 'users were erased while this batch waited' using errcode = '40001';
    end if;

    -- The first item of each session_id not already stored, in one insert:
    -- the trigger on sessions then recomputes each user once.
    with items as (
        select i.*
        from unnest(p_session_ids, p_user_external_ids, p_started_ats, p_durations, p_sentiments, p_time_zones)
             with ordinality as i(sid, ext, started, secs, score, tz, ord)
        where (i.tz is null or i.tz <> all (v_bad_zones)) and i.ord <> all (v_gone)
    ),
    firsts as (
        select distinct on (items.sid) items.* from items order by items.sid, items.ord
    ),
    inserted as (
        insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
        select f.sid, u.id, f.started, f.secs, f.score
        from firsts f join users u on u.external_id = f.ext
        where not exists (select from sessions s where s.session_id = f.sid)
        -- In session_id order, so two batches that share session_ids wait
        -- for each other in turn.
        order by f.sid
        -- A concurrent writer of the same session_id committed first: the
        -- comparison below classifies the item against its row.
        on conflict (session_id) do nothing
        returning session_id
    )
    select array_agg(inserted.session_id) into v_inserted from inserted;
    v_inserted := coalesce(v_inserted, '{}');

    -- Zones reported by stored items that differ from the ones in force.
    insert into user_settings (user_id, effective_from, time_zone, day_starts_at)
    select s.user_id, s.started_at, i.tz, st.day_starts_at
    from unnest(p_session_ids, p_time_zones) as i(sid, tz)
    join unnest(v_inserted) as n(sid) on n.sid = i.sid
    join sessions s on s.session_id = i.sid
    cross join lateral coco.settings_at(s.user_id, s.started_at) st
    where i.tz is not null and i.tz <> st.time_zone
    on conflict (user_id, effective_from) do nothing;

    -- Joins, not "= any (array)": a batch of n items would compare n by n.
    return query
    with items as (
        select i.*
        from unnest(p_session_ids, p_user_external_ids, p_started_ats, p_durations, p_sentiments, p_time_zones)
             with ordinality as i(sid, ext, started, secs, score, tz, ord)
    ),
    firsts as (
        select items.sid, min(items.ord) as ord from items group by items.sid
    ),
    inserted as (select unnest(v_inserted) as sid),
    gone as (select unnest(v_gone) as ord)
    select i.ord::integer,
           case
               when i.tz = any (v_bad_zones) then 'invalid'
               when g.ord is not null then 'gone'
               when n.sid is not null and f.ord = i.ord then 'ok'
               when cardinality(d.fields) = 0 then 'duplicate'
               else 'conflict'
           end,
           case
               when i.tz = any (v_bad_zones) then 'time_zone'
               when g.ord is not null then null
               when cardinality(d.fields) > 0 and not (n.sid is not null and f.ord = i.ord)
                   then array_to_string(d.fields, ', ')
           end
    from items i
    join firsts f on f.sid = i.sid
    left join inserted n on n.sid = i.sid
    left join gone g on g.ord = i.ord
    left join lateral (
        select array_remove(array[
            case when u.external_id is distinct from i.ext then 'user_external_id' end,
            case when s.started_at is distinct from i.started then 'started_at' end,
            case when s.duration_seconds is distinct from i.secs then 'duration_seconds' end,
            case when s.sentiment_score is distinct from i.score then 'sentiment_score' end
        ], null) as fields
        from sessions s join users u on u.id = s.user_id
        where s.session_id = i.sid
    ) d on true
    order by i.ord;
end;
$$;

-- Settings changes, like ingests, are refused (CC410) for a user erased
-- after the change's instant, and lock the user as every writer does.
create or replace function coco.put_settings(
    p_external_id text, p_time_zone text, p_day_starts_at interval, p_effective_from timestamptz
) returns void
language plpgsql
as $$
declare
    v_user_id uuid := coco.lock_user(p_external_id, p_effective_from);
    v_zone text;
    v_day_starts_at interval;
begin
    if v_user_id is null then
        raise exception 'user erased' using errcode = 'CC410';
    end if;
    select s.time_zone, s.day_starts_at into v_zone, v_day_starts_at
    from coco.settings_at(v_user_id, p_effective_from) s;
    if p_time_zone is not null and p_time_zone <> v_zone and not coco.is_time_zone(p_time_zone) then
        raise exception 'unknown time zone' using errcode = 'CC422', detail = 'time_zone';
    end if;
    if coalesce(p_time_zone, v_zone) = v_zone and coalesce(p_day_starts_at, v_day_starts_at) = v_day_starts_at then
        return;
    end if;
    insert into user_settings as us (user_id, effective_from, time_zone, day_starts_at)
    values (v_user_id, p_effective_from, coalesce(p_time_zone, v_zone), coalesce(p_day_starts_at, v_day_starts_at))
    on conflict (user_id, effective_from) do update
        set time_zone = excluded.time_zone, day_starts_at = excluded.day_starts_at;
end;
$$;

-- Erases the user with p_external_id in one transaction: the user row,
-- and with it every session, the rollup and the settings, and records the
-- erasure at p_now (see erasures). Returns how many sessions were erased:
-- 0 for a user erased before and not seen since (the erasure's instant then
-- moves to p_now); null for a user never seen. Serialized with ingests of
-- the user: one that locked the user first is erased with it, one that
-- waits for this is refused.
create function coco.erase_user(p_external_id text, p_now timestamptz default now())
returns integer
language plpgsql
as $$
declare
    v_hash bytea := coco.user_hash(p_external_id);
    v_user_id uuid;
    v_sessions integer;
    v_known boolean;
begin
    -- The erasure's row first: an ingest checking it waits for this, and
    -- this waits for an ingest that checked it before.
    select true into v_known from erasures e where e.user_hash = v_hash for update;
    select u.id into v_user_id from users u where u.external_id = p_external_id for update;
    if v_user_id is null and v_known is null then
        return null;
    end if;
    select count(*) into v_sessions from sessions s where s.user_id = v_user_id;
    -- Cascades to sessions, dashboard_rollups and user_settings.
    delete from users u where u.id = v_user_id;
    insert into erasures (user_hash, erased_at) values (v_hash, p_now)
    on conflict (user_hash) do update set erased_at = greatest(erasures.erased_at, excluded.erased_at);
    return v_sessions;
end;
$$;

-- Deletes at most p_limit sessions that started before p_before, and the
-- erasure records older than it (the sessions they refuse would be pruned
-- too). Raises CC422 (detail older_than) for a cut-off less than 8 days
-- before p_now: every window is seven local days, so no window loses a
-- session, and no rollup changes (see coco.sessions_changed). Returns the
-- counts; call again until sessions is less than p_limit, each call a short
-- transaction.
create function coco.prune_sessions(p_before timestamptz, p_limit integer, p_now timestamptz default now())
returns table (sessions integer, erasures integer)
language plpgsql
as $$
declare
    v_sessions integer;
    v_erasures integer;
begin
    if p_before > p_now - interval '8 days' then
        raise exception 'a retention cut-off must be at least 8 days ago' using errcode = 'CC422', detail = 'older_than';
    end if;
    delete from sessions s
    where s.id in (select o.id from sessions o where o.started_at < p_before limit p_limit);
    get diagnostics v_sessions = row_count;
    delete from erasures e where e.erased_at < p_before;
    get diagnostics v_erasures = row_count;
    return query select v_sessions, v_erasures;
end;
$$;

-- A deletion now recomputes only the users whose stored window could hold
-- a deleted session (the window's days, and a day on each side for any
-- offset): pruning old history changes no rollup, not even a stale one.
create or replace function coco.sessions_changed() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'INSERT' then
        perform coco.store_rollups(array(select distinct n.user_id from new_rows n), now(), clock_timestamp());
    elsif tg_op = 'TRUNCATE' then
        perform coco.store_rollups(array(select u.id from users u), now(), clock_timestamp());
    elsif tg_op = 'DELETE' then
        perform coco.store_rollups(array(
            select distinct o.user_id
            from old_rows o join dashboard_rollups r on r.user_id = o.user_id
            where o.started_at >= (r.window_end - 7)::timestamp at time zone 'UTC'), now(), clock_timestamp());
    else
        -- An update may move a session from one user to another: both change.
        perform coco.store_rollups(array(
            select n.user_id from new_rows n union select o.user_id from old_rows o), now(), clock_timestamp());
    end if;
    return null;
end;
$$;

-- Replaced to compute without storing in any read-only transaction (an
-- export's snapshot, a standby), not only on a standby.
create or replace function coco.dashboard_at(p_external_id text, p_now timestamptz default now())
returns table (
    window_end date,
    time_zone text,
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
declare
    v_user_id uuid;
    v_zone text;
    v_day_starts_at interval;
begin
    return query select * from coco.fresh_snapshot(p_external_id, p_now);
    if found then
        return;
    end if;
    select u.id into v_user_id from users u where u.external_id = p_external_id;
    if v_user_id is not null and not current_setting('transaction_read_only')::boolean then
        perform coco.store_rollups(array[v_user_id], p_now, null);
        return query select * from coco.fresh_snapshot(p_external_id, p_now);
        return;
    end if;
    select s.time_zone, s.day_starts_at into v_zone, v_day_starts_at from coco.settings_at(v_user_id, p_now) s;
    -- The casts keep numeric(4,2), which a function's result drops.
    return query
    select n.window_end, n.time_zone, coco.streak(n.daily_activity), n.daily_activity, n.daily_durations,
           n.daily_sentiment::numeric(4,2)[], n.last_session_at, n.avg_duration_minutes, n.current_tone, n.updated_at
    from coco.rollup_row(v_user_id, coco.local_day(p_now, v_zone, v_day_starts_at), v_zone, v_day_starts_at, null) n;
end;
$$;

-- Makes p_role a role for analysts (created NOLOGIN when missing): it may
-- read the tables and the coco views, and run what reads; it may write
-- nothing. Give people their own login roles in it:
-- create role alice login in role <p_role>. Idempotent. Needs CREATEROLE
-- to create the role.
create function coco.grant_analyst(p_role text) returns void
language plpgsql
as $$
begin
    if not exists (select from pg_roles where rolname = p_role) then
        execute format('create role %I nologin', p_role);
    end if;
    execute format('grant usage on schema public, coco to %I', p_role);
    execute format('grant select on table users, sessions, dashboard_rollups, user_settings, erasures to %I', p_role);
    execute format('grant select on table coco.dashboard_overview, coco.rollup_drift to %I', p_role);
end;
$$;

-- What only the service and operators may run; EXECUTE is PUBLIC's by
-- default. An analyst's role (coco grant-analyst) reads, and runs the
-- read-only functions.
revoke execute on function
    coco.erase_user(text, timestamptz),
    coco.prune_sessions(timestamptz, integer, timestamptz),
    coco.lock_user(text, timestamptz),
    coco.grant_analyst(text)
from public;
