-- Heldar's first schema (DESIGN.md §3). Timestamps are RFC 3339 UTC text with millisecond
-- precision and a `Z` suffix (so they sort as text); booleans are integers.

CREATE TABLE cameras (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    vendor           TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    rtsp_port        INTEGER NOT NULL DEFAULT 554,
    http_port        INTEGER NOT NULL DEFAULT 80,
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
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE snapshot_schedules (
    id               TEXT PRIMARY KEY NOT NULL,
    camera_id        TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    interval_seconds INTEGER NOT NULL,
    enabled          INTEGER NOT NULL DEFAULT 1,
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
    size_bytes  INTEGER NOT NULL,
    width       INTEGER,
    height      INTEGER,
    created_at  TEXT NOT NULL
);
CREATE INDEX snapshots_camera_taken ON snapshots(camera_id, taken_at);
CREATE INDEX snapshots_taken ON snapshots(taken_at);
CREATE INDEX snapshots_schedule ON snapshots(schedule_id);
