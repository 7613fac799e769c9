-- Stores one session summary from the device, creating its user if needed.
-- Returns 'ok' when stored, 'duplicate' when this session_id is already stored
-- with the same values (the same instant in any offset counts as the same).
-- Raises CC409 when the session_id is stored with other values, naming the
-- fields that differ in the detail; nothing is changed then.
create function coco.ingest_session(
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
    v_differs text[];
begin
    select u.external_id, s.started_at, s.duration_seconds, s.sentiment_score into v_stored
    from sessions s join users u on u.id = s.user_id
    where s.session_id = p_session_id;

    if not found then
        -- The trigger on sessions recomputes the user's rollup.
        insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
        values (p_session_id, coco.ensure_user(p_user_external_id), p_started_at, p_duration_seconds, p_sentiment_score)
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
