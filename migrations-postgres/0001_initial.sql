-- Heldar's first schema in PostgreSQL's dialect: the same tables, columns and indexes as
-- migrations/0001_initial.sql (docs/scale-out.md "Database back-ends"). Timestamps are RFC 3339
-- UTC text with millisecond precision and a `Z` suffix, exactly as on SQLite (so text order is
-- time order and the Rust code is shared); booleans are integers 0/1; every INTEGER is BIGINT,
-- SQLite's integer width, so the same Rust types (i64) read both.

CREATE TABLE cameras (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    vendor           TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    rtsp_port        BIGINT NOT NULL DEFAULT 554,
    http_port        BIGINT NOT NULL DEFAULT 80,
    username         TEXT,
    password         TEXT,
    main_stream_url  TEXT,
    sub_stream_url   TEXT,
    snapshot_url     TEXT,
    snapshot_source  TEXT NOT NULL DEFAULT 'auto',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE camera_status (
    camera_id            TEXT PRIMARY KEY NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    state                TEXT NOT NULL DEFAULT 'unknown',
    last_success_at      TEXT,
    last_error           TEXT,
    last_error_at        TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE snapshot_schedules (
    id               TEXT PRIMARY KEY NOT NULL,
    camera_id        TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    interval_seconds BIGINT NOT NULL,
    enabled          BIGINT NOT NULL DEFAULT 1,
    last_fired_at    TEXT,
    next_due_at      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX snapshot_schedules_camera ON snapshot_schedules(camera_id);
CREATE INDEX snapshot_schedules_due ON snapshot_schedules(enabled, next_due_at);

CREATE TABLE snapshots (
    id          TEXT PRIMARY KEY NOT NULL,
    camera_id   TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    schedule_id TEXT REFERENCES snapshot_schedules(id) ON DELETE SET NULL,
    path        TEXT NOT NULL UNIQUE,
    taken_at    TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    width       BIGINT,
    height      BIGINT,
    created_at  TEXT NOT NULL
);
CREATE INDEX snapshots_camera_taken ON snapshots(camera_id, taken_at);
CREATE INDEX snapshots_taken ON snapshots(taken_at);
CREATE INDEX snapshots_schedule ON snapshots(schedule_id);
