-- Per-camera TLS trust, as migrations/0005_camera_tls.sql.
ALTER TABLE cameras ADD COLUMN tls_verify TEXT NOT NULL DEFAULT 'system'
    CHECK (tls_verify IN ('system', 'pinned', 'off'));
ALTER TABLE cameras ADD COLUMN tls_fingerprint TEXT;
