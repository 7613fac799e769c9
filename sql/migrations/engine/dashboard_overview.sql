-- One row per user for analysts in psql: the stored rollup, its streak, and
-- whether it is stale (missing, or stored for a window that no longer ends
-- today; coco.refresh_stale_rollups() brings those up to date).
create view coco.dashboard_overview as
select
    u.external_id,
    coco.streak(r.daily_activity) as streak_days,
    r.daily_activity,
    r.daily_durations,
    r.daily_sentiment,
    r.avg_duration_minutes,
    r.current_tone,
    r.last_session_at,
    r.window_end,
    r.window_end is distinct from coco.today() as is_stale,
    r.updated_at
from users u
left join dashboard_rollups r on r.user_id = u.id;
