-- Batch ingest for devices that were offline: many sessions in one
-- transaction, each user's rollup recomputed once. No table is altered.

-- Replaced so that it locks the user before it writes, as the batch does:
-- every writer then takes the user locks first, in user id order, and a
-- single ingest and a batch over the same users cannot deadlock (a writer
-- that inserted a session and then waited for a user's lock could hold the
-- session id another writer waits for). Otherwise as before: returns 'ok'
-- when stored, 'duplicate' when this session_id is already stored with the
-- same values; raises CC409 naming the fields that differ otherwise.
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
        v_user_id := coco.ensure_user(p_user_external_id);
        perform from users u where u.id = v_user_id for no key update;
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

-- Stores a batch of session summaries, item i made of the i-th element of
-- each array (p_time_zones elements may be null), in one statement per
-- step, so each user's rollup is recomputed once for the whole batch (once
-- more for a user whose zone changed). Returns one row per item, in input
-- order: status 'ok', 'duplicate' (this session_id is stored with the same
-- values, or repeats an earlier item with the same values), 'conflict'
-- (stored or repeated with other values; detail names the fields; the
-- stored row is kept) or 'invalid' (detail 'time_zone': a zone PostgreSQL
-- does not know). A zone that differs from the one in force when its
-- session started is recorded as for a single ingest, for stored items.
-- Raises what the tables raise; then nothing of the batch is stored.
create function coco.ingest_sessions(
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
    v_inserted text[];
begin
    -- Zones not already in use are looked up once, all together (reading
    -- the zone files is the costly part).
    v_bad_zones := array(
        select z.name
        from (select distinct tz as name from unnest(p_time_zones) tz where tz is not null) z
        where not exists (select from user_settings us where us.time_zone = z.name)
          and not coco.is_time_zone(z.name));

    -- Every user in one statement; in name order, so two batches creating
    -- the same new users wait for each other instead of deadlocking.
    insert into users (external_id)
    select distinct e.ext
    from unnest(p_user_external_ids, p_time_zones) as e(ext, tz)
    where e.tz is null or e.tz <> all (v_bad_zones)
    order by e.ext
    on conflict (external_id) do nothing;

    -- The users' locks, in id order, before any write (see ingest_session).
    perform from users u where u.external_id = any (p_user_external_ids) order by u.id for no key update;

    -- The first item of each session_id not already stored, in one insert:
    -- the trigger on sessions then recomputes each user once.
    with items as (
        select i.*
        from unnest(p_session_ids, p_user_external_ids, p_started_ats, p_durations, p_sentiments, p_time_zones)
             with ordinality as i(sid, ext, started, secs, score, tz, ord)
        where i.tz is null or i.tz <> all (v_bad_zones)
    ),
    firsts as (
        select distinct on (items.sid) items.* from items order by items.sid, items.ord
    ),
    inserted as (
        insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
        select f.sid, u.id, f.started, f.secs, f.score
        from firsts f join users u on u.external_id = f.ext
        where not exists (select from sessions s where s.session_id = f.sid)
        order by f.ord
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
    join sessions s on s.session_id = i.sid
    cross join lateral coco.settings_at(s.user_id, s.started_at) st
    where i.sid = any (v_inserted) and i.tz is not null and i.tz <> st.time_zone
    on conflict (user_id, effective_from) do nothing;

    return query
    with items as (
        select i.*
        from unnest(p_session_ids, p_user_external_ids, p_started_ats, p_durations, p_sentiments, p_time_zones)
             with ordinality as i(sid, ext, started, secs, score, tz, ord)
    ),
    firsts as (
        select items.sid, min(items.ord) as ord from items group by items.sid
    )
    select i.ord::integer,
           case
               when i.tz = any (v_bad_zones) then 'invalid'
               when i.sid = any (v_inserted) and f.ord = i.ord then 'ok'
               when cardinality(d.fields) = 0 then 'duplicate'
               else 'conflict'
           end,
           case
               when i.tz = any (v_bad_zones) then 'time_zone'
               when cardinality(d.fields) > 0 and not (i.sid = any (v_inserted) and f.ord = i.ord)
                   then array_to_string(d.fields, ', ')
           end
    from items i
    join firsts f on f.sid = i.sid
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
