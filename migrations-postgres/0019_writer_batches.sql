-- The PostgreSQL writer's batch markers (docs/scale-out.md "The PostgreSQL writer"). Each write
-- batch inserts one row, in its own transaction, with a random id the writer keeps until the
-- commit is answered. When the connection breaks after COMMIT was sent and before its answer
-- came, the writer asks for its marker once the server is back: present, the batch committed
-- and its callers get the answers computed in it; absent, it did not, and it is run again (with
-- the same id, so a commit that lands late is still seen). Markers older than an hour are
-- deleted by the writers themselves, a few at a time. `created_at` as in 0001 (RFC 3339 UTC,
-- milliseconds, so text order is time order).
CREATE TABLE writer_batches (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL
);
