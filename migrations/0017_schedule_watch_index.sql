-- The offline watch (services::outage_watch, every few seconds) asks which enabled schedules
-- are due within one interval of now. Written as a comparison of this expression with a
-- constant, SQLite answers it with a range scan of this index instead of computing julianday()
-- for every row: at 100,000 idle windowed schedules the look took 250-300 ms of CPU each time,
-- with the index 2-6 ms (measured on this project's 2-core machine with sqlite3 and a copy of
-- the schema, docs/benchmarks.md). The expression must stay exactly as
-- db::schedules::watched_intervals writes it, or SQLite will not use the index.
CREATE INDEX snapshot_schedules_watch
    ON snapshot_schedules(enabled, (julianday(next_due_at) * 86400.0 - interval_seconds));
