-- As migrations/0013_outages_webhooks.sql, in PostgreSQL's dialect (SQLite's INTEGER is BIGINT here).
-- Offline alerts and outage history, and webhooks (docs/integrations.md). Timestamps as in 0001.

-- One row per outage of a camera: opened when the camera goes offline (N failures in a row, or
-- no frame for T seconds while it has an enabled schedule), closed (`ended_at`) by its next
-- successful capture. At most one open outage per camera (the partial unique index); an open
-- one survives a restart and is closed by the first success after it.
CREATE TABLE outages (
    id           TEXT PRIMARY KEY NOT NULL,
    camera_id    TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    first_error  TEXT,
    last_error   TEXT,
    failures     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outages_camera ON outages(camera_id, started_at);
CREATE INDEX outages_started ON outages(started_at);
CREATE UNIQUE INDEX outages_one_open ON outages(camera_id) WHERE ended_at IS NULL;

-- Webhook subscriptions: global (`camera_id` NULL) or for one camera (deleted with it).
-- `events` is a JSON array of event types; `secret` is sealed like camera passwords.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    camera_id   TEXT REFERENCES cameras(id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    enabled     BIGINT NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- The delivery log: one row per event handed to a subscription's receiver, updated after each
-- attempt; the newest 1,000 per subscription are kept.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    response_code    BIGINT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    last_attempt_at  TEXT,
    next_attempt_at  TEXT,
    finished_at      TEXT
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, created_at);
