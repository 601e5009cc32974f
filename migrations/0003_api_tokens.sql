-- API tokens with roles (DESIGN.md §11). Only a SHA-256 of each token is kept; the token itself
-- is shown once, by `heldar token create`. A revoked token keeps its row for the audit trail.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash        BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
-- A name picks one live token; a revoked name can be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
