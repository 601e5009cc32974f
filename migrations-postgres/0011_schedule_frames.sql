-- As migrations/0011_schedule_frames.sql, in PostgreSQL's dialect (SQLite's INTEGER is BIGINT here).
-- Issue 17, items 4 and 5 (docs/schedules.md "Which frames are kept"): per schedule, skipping
-- dark and unchanged frames, the stream frames are taken from and how long they are kept; per
-- camera, a cap on its stored bytes. Plain columns, not a JSON object like `calendar`:
-- retention selects frames by their schedule's `retention_hours` and cameras by `max_bytes` in
-- SQL, and the skip fields are read on every slot.
ALTER TABLE snapshot_schedules ADD COLUMN skip_dark BIGINT NOT NULL DEFAULT 0;
-- Mean luma (0..=255) below which a frame is dark; NULL: the default (16).
ALTER TABLE snapshot_schedules ADD COLUMN dark_threshold BIGINT;
ALTER TABLE snapshot_schedules ADD COLUMN skip_unchanged BIGINT NOT NULL DEFAULT 0;
-- 'main', 'sub' or 'snapshot'; NULL: the camera's own choice.
ALTER TABLE snapshot_schedules ADD COLUMN stream TEXT;
-- Hours this schedule's frames are kept; NULL: HELDAR_SNAPSHOT_RETENTION_HOURS.
ALTER TABLE snapshot_schedules ADD COLUMN retention_hours BIGINT;
-- The last slot skipped (dark or unchanged) and why.
ALTER TABLE snapshot_schedules ADD COLUMN last_skipped_at TEXT;
ALTER TABLE snapshot_schedules ADD COLUMN last_skip_reason TEXT;
CREATE INDEX snapshot_schedules_retention ON snapshot_schedules(retention_hours)
    WHERE retention_hours IS NOT NULL;
-- Bytes of stored frames this camera may hold; NULL: no per-camera cap.
ALTER TABLE cameras ADD COLUMN max_bytes BIGINT;
