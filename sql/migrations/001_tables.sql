-- coco's data: users, their sessions, and one stored seven-day rollup per user.
-- Only tables live here; the functions and the trigger that keep the rollups
-- current live in schema coco (002), so they can be reloaded without touching data.

-- gen_random_uuid() is in core since PostgreSQL 13; the extension keeps older
-- servers and the original design's set-up instructions working.
create extension if not exists pgcrypto;

create table users (
    id uuid not null default gen_random_uuid(),
    -- The dashboard's user_id; the same rules the HTTP layer enforces, so rows
    -- typed in psql cannot break the URL it is served under.
    external_id text not null,
    created_at timestamptz not null default now(),
    constraint users_pkey primary key (id),
    constraint users_external_id_key unique (external_id),
    constraint users_external_id_format check (
        char_length(external_id) between 1 and 128
        and external_id !~ '[/[:space:][:cntrl:]]'
    )
);

create table sessions (
    id uuid not null default gen_random_uuid(),
    -- The device's id for the session: the idempotency key of every ingest.
    session_id text not null,
    user_id uuid not null,
    started_at timestamptz not null,
    duration_seconds integer not null,
    sentiment_score numeric not null,
    created_at timestamptz not null default now(),
    constraint sessions_pkey primary key (id),
    constraint sessions_session_id_key unique (session_id),
    constraint sessions_session_id_length check (char_length(session_id) between 1 and 128),
    constraint sessions_user_id_fkey foreign key (user_id) references users (id) on delete cascade,
    constraint sessions_duration_seconds_range check (duration_seconds between 0 and 86400),
    constraint sessions_sentiment_score_range check (sentiment_score between 0 and 1)
);

-- Every rollup reads one user's sessions in a seven-day range of started_at.
create index sessions_user_id_started_at_idx on sessions (user_id, started_at);

create table dashboard_rollups (
    user_id uuid not null,
    -- The UTC day the arrays end on; index 1 is window_end - 6, index 7 is window_end.
    window_end date not null,
    daily_activity boolean[] not null,
    daily_durations integer[] not null,
    daily_sentiment numeric(4,2)[] not null,
    last_session_at timestamptz,
    avg_duration_minutes integer not null,
    current_tone text not null,
    updated_at timestamptz not null default now(),
    constraint dashboard_rollups_pkey primary key (user_id),
    constraint dashboard_rollups_user_id_fkey foreign key (user_id) references users (id) on delete cascade,
    constraint dashboard_rollups_current_tone_value check (current_tone in ('positive', 'neutral', 'negative')),
    constraint dashboard_rollups_seven_days check (
        cardinality(daily_activity) = 7
        and cardinality(daily_durations) = 7
        and cardinality(daily_sentiment) = 7
    )
);

---- create above / drop below ----

drop table dashboard_rollups;
drop table sessions;
drop table users;
