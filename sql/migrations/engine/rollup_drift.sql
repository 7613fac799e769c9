-- The users whose stored rollup disagrees with their sessions: it differs
-- from a fresh coco.rollup_window for the window it is stored for, or the
-- user has sessions and no rollup at all. Empty when every rollup is right;
-- after a restore or a fix, `coco recompute -all` empties it.
create view coco.rollup_drift as
select u.external_id, r.window_end
from users u
join dashboard_rollups r on r.user_id = u.id
cross join lateral coco.rollup_window(r.user_id, r.window_end) w
where (r.daily_activity, r.daily_durations, r.daily_sentiment,
       r.last_session_at, r.avg_duration_minutes, r.current_tone)
      is distinct from
      (w.daily_activity, w.daily_durations, w.daily_sentiment,
       w.last_session_at, w.avg_duration_minutes, w.current_tone)
union all
select u.external_id, null
from users u
where exists (select from sessions s where s.user_id = u.id)
  and not exists (select from dashboard_rollups r where r.user_id = u.id);
