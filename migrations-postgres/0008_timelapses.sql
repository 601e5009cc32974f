-- Timelapse videos (docs/timelapse.md), as migrations/0008_timelapses.sql in PostgreSQL's dialect:
-- SQLite's INTEGER is BIGINT here; timestamps and booleans as in 0001.

-- A camera's standing order: "every day at 00:30 in Europe/Berlin, the previous local day".
-- `covered_until` is the end of the last period the rule has claimed (UTC): a run moves it from
-- the value it read to the end of the period it makes, with a conditional update, so each
-- period is made once across restarts and processes (like a schedule's slot claim).
CREATE TABLE timelapse_rules (
    id             TEXT PRIMARY KEY NOT NULL,
    camera_id      TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    period         TEXT NOT NULL CHECK (period IN ('daily', 'weekly')),
    at             TEXT NOT NULL,
    time_zone      TEXT NOT NULL,
    weekday        TEXT CHECK (weekday IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')),
    fps            BIGINT NOT NULL,
    width          BIGINT,
    format         TEXT NOT NULL CHECK (format IN ('mp4', 'webm')),
    enabled        BIGINT NOT NULL DEFAULT 1,
    covered_until  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX timelapse_rules_camera ON timelapse_rules(camera_id);

-- A finished video. `file` is relative to $DATA_DIR/timelapses: `{camera_id}/{id}.{format}`.
CREATE TABLE timelapses (
    id          TEXT PRIMARY KEY NOT NULL,
    camera_id   TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    rule_id     TEXT REFERENCES timelapse_rules(id) ON DELETE SET NULL,
    file        TEXT NOT NULL UNIQUE,
    from_at     TEXT NOT NULL,
    to_at       TEXT NOT NULL,
    fps         BIGINT NOT NULL,
    width       BIGINT NOT NULL,
    height      BIGINT NOT NULL,
    frames      BIGINT NOT NULL,
    format      TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX timelapses_camera ON timelapses(camera_id, created_at);
CREATE INDEX timelapses_created ON timelapses(created_at);

-- Background work. Only `timelapse` jobs exist so far. A job of a rule carries the rule and the
-- period it makes (`from_at`, `to_at`).
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL DEFAULT 'timelapse' CHECK (kind IN ('timelapse')),
    camera_id     TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    from_at       TEXT NOT NULL,
    to_at         TEXT NOT NULL,
    fps           BIGINT NOT NULL,
    width         BIGINT,
    every_nth     BIGINT NOT NULL,
    format        TEXT NOT NULL,
    rule_id       TEXT REFERENCES timelapse_rules(id) ON DELETE SET NULL,
    frames_done   BIGINT NOT NULL DEFAULT 0,
    frames_total  BIGINT NOT NULL DEFAULT 0,
    output_bytes  BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    code          TEXT,
    timelapse_id  TEXT REFERENCES timelapses(id) ON DELETE SET NULL,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT
);
CREATE INDEX jobs_state ON jobs(state, created_at);
CREATE INDEX jobs_camera ON jobs(camera_id, created_at);
