-- The activity streak: how many days in a row, counted back from the last
-- element (today), are true. Returns 0 when today is inactive.
create function coco.streak(p_daily_activity boolean[]) returns integer
language sql immutable parallel safe strict
return cardinality(p_daily_activity) - coalesce(
    (select max(i) from generate_subscripts(p_daily_activity, 1) as i where not p_daily_activity[i]),
    0
);
