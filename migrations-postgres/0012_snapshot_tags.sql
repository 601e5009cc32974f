-- As migrations/0012_snapshot_tags.sql, in PostgreSQL's dialect (SQLite's INTEGER is BIGINT here).
-- Issue 18: a kept frame's tag (`doorbell`, `gate-open`…), set when a frame is taken on demand
-- through the API (`POST …/snapshot?store=true&tag=`) or an MQTT capture trigger; NULL for
-- scheduled frames and untagged ones. 1–64 characters of [A-Za-z0-9_.-], checked by
-- `models::Tag` before it gets here. The index serves `GET …/snapshots?tag=`, newest first.
ALTER TABLE snapshots ADD COLUMN tag TEXT;
CREATE INDEX snapshots_camera_tag_taken ON snapshots (camera_id, tag, taken_at) WHERE tag IS NOT NULL;
