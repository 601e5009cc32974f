-- As migrations/0010_schedule_calendar.sql, in PostgreSQL's dialect (SQLite's INTEGER is BIGINT here).
-- Issue 17: a schedule's calendar (docs/schedules.md) — timezone, align, at, weekdays,
-- active_from/active_to, daylight — as one JSON object (`slot::spec::Calendar`), NULL for the
-- kernel's plain interval schedule. One column, not seven: the fields are read and written
-- together, never queried one by one, and their combinations are checked in one place
-- (`slot::spec`), so columns would add constraints nobody could express in SQL anyway.
ALTER TABLE snapshot_schedules ADD COLUMN calendar TEXT;
