-- Computes, without storing anything, one user's seven-day rollup ending on
-- p_today: the daily arrays (oldest day first), the end of the latest-started
-- session, the mean of the non-zero daily minutes and the current tone.
-- Every rollup rule lives here; recompute_rollups stores what this returns.
create function coco.rollup_window(p_user_id uuid, p_today date default coco.today())
returns table (
    window_end date,
    daily_activity boolean[],
    daily_durations integer[],
    daily_sentiment numeric(4,2)[],
    last_session_at timestamptz,
    avg_duration_minutes integer,
    current_tone text
)
language sql stable parallel safe
as $$
    with window_sessions as (
        -- A range on started_at, so the (user_id, started_at) index bounds the
        -- scan to the window however long the user's history is.
        select s.started_at, s.duration_seconds, s.sentiment_score
        from sessions s
        where s.user_id = p_user_id
          and s.started_at >= coco.day_start(p_today - 6)
          and s.started_at < coco.day_start(p_today + 1)
    ),
    per_day as (
        -- A session counts on the day it started, even if it ends the next day.
        select coco.day_of(started_at) as day,
               sum(duration_seconds) as seconds,
               avg(sentiment_score) as sentiment
        from window_sessions
        group by 1
    ),
    daily as (
        -- numeric round() rounds half away from zero: half up for these
        -- non-negative values (90 s -> 2 min, 0.125 -> 0.13).
        select d.day,
               p.day is not null as active,
               coalesce(round(p.seconds / 60.0), 0)::integer as minutes,
               round(p.sentiment, 2)::numeric(4,2) as sentiment
        from generate_series(p_today - 6, p_today, interval '1 day') as g(day_ts)
        cross join lateral (select g.day_ts::date as day) as d
        left join per_day p on p.day = d.day
    )
    select
        p_today,
        array_agg(daily.active order by daily.day),
        array_agg(daily.minutes order by daily.day),
        array_agg(daily.sentiment order by daily.day),
        (select ws.started_at + make_interval(secs => ws.duration_seconds)
           from window_sessions ws
          order by ws.started_at desc, ws.duration_seconds desc
          limit 1),
        coalesce(round(avg(daily.minutes) filter (where daily.minutes > 0)), 0)::integer,
        coco.tone((array_agg(daily.sentiment order by daily.day desc)
                     filter (where daily.sentiment is not null))[1])
    from daily
$$;
