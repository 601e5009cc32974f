-- Per-camera TLS trust (https snapshot URLs, rtsps and https streams): `system` checks the
-- certificate against Heldar's root authorities, `pinned` accepts exactly the certificate whose
-- SHA-256 fingerprint is `tls_fingerprint` (`sha256:AB:CD:…`), `off` accepts any certificate.
ALTER TABLE cameras ADD COLUMN tls_verify TEXT NOT NULL DEFAULT 'system'
    CHECK (tls_verify IN ('system', 'pinned', 'off'));
ALTER TABLE cameras ADD COLUMN tls_fingerprint TEXT;
