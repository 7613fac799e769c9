-- The tone label for one day's mean sentiment (already rounded to 2 places).
-- Returns 'positive' from 0.61, 'negative' below 0.40, 'neutral' otherwise,
-- including when there is no sentiment at all (null).
create function coco.tone(p_sentiment numeric) returns text
language sql immutable parallel safe
return case
    when p_sentiment >= 0.61 then 'positive'
    when p_sentiment < 0.40 then 'negative'
    else 'neutral'
end;
