-- As migrations/0017_schedule_watch_index.sql, in PostgreSQL's dialect. The offline watch
-- (services::outage_watch, every few seconds) asks which enabled schedules are due within one
-- interval of now; SQLite answers that from an index on
-- `julianday(next_due_at) * 86400.0 - interval_seconds`. PostgreSQL has no julianday(), and its
-- own text-to-time casts cannot be indexed (they are STABLE: they read the session's DateStyle
-- and time zone). Heldar writes every timestamp in one format, `YYYY-MM-DDTHH:MM:SS.mmmZ`
-- (models::fmt_ts), which parses to the same instant under every setting, so this function
-- turns that text into seconds since the epoch and is declared IMMUTABLE, which lets the index
-- use it. It must only ever be given Heldar's own timestamps; the query in
-- db::schedules::watched_intervals writes the index's expression exactly, so PostgreSQL uses it.
CREATE FUNCTION heldar_epoch(ts TEXT) RETURNS DOUBLE PRECISION
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT EXTRACT(EPOCH FROM (replace(replace(ts, 'T', ' '), 'Z', '')::timestamp))::double precision $$;

CREATE INDEX snapshot_schedules_watch
    ON snapshot_schedules(enabled, (heldar_epoch(next_due_at) - interval_seconds));
