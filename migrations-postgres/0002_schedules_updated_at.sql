-- The scheduler's periodic re-read asks only for schedules changed since its last look.
CREATE INDEX snapshot_schedules_updated ON snapshot_schedules(updated_at);
