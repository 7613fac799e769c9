-- The one place that maps an instant to the day it counts on, and a day back
-- to the instant it starts. Today every user's day is the UTC day; a per-user
-- time zone would change these two functions and nothing else.
create function coco.day_of(p_at timestamptz) returns date
language sql immutable parallel safe strict
return (p_at at time zone 'UTC')::date;

create function coco.day_start(p_day date) returns timestamptz
language sql immutable parallel safe strict
return p_day::timestamp at time zone 'UTC';

-- The day a rollup is computed for when the caller does not pin one.
create function coco.today() returns date
language sql stable parallel safe
return coco.day_of(now());
