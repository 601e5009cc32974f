-- As migrations/0014_nodes.sql, in PostgreSQL's dialect (SQLite's INTEGER is BIGINT here).
-- Nodes and camera leases (docs/fleet.md). Timestamps as in 0001 (RFC 3339 UTC, milliseconds,
-- so text order is time order).

-- One row per running Heldar process. `heartbeat_at` moves every lease period / 3; a node whose
-- heartbeat is older than one lease period is dead. A node that stops cleanly deletes its row; a
-- dead node's row is deleted by a live node 24 hours after its last heartbeat.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    draining      BIGINT NOT NULL DEFAULT 0
);

-- Which node captures a camera's schedules, until `expires_at`. No row, or an expired one: the
-- camera is free, and the next node to look takes it. Leases decide who tries; the slot claim on
-- `snapshot_schedules.next_due_at` stays what makes a slot captured once.
CREATE TABLE camera_leases (
    camera_id   TEXT PRIMARY KEY NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX camera_leases_node ON camera_leases(node_id);
