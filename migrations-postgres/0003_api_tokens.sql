-- API tokens with roles, as migrations/0003_api_tokens.sql. Only a SHA-256 of each token is
-- kept (BYTEA, SQLite's BLOB). A revoked token keeps its row for the audit trail.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash        BYTEA NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
-- A name picks one live token; a revoked name can be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
