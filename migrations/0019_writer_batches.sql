-- The same table as migrations-postgres/0019_writer_batches.sql, and unused on SQLite: the
-- PostgreSQL writer's batch markers (docs/scale-out.md "The PostgreSQL writer"), which settle a
-- commit whose answer was lost on the network. SQLite's commit is a local call that answers or
-- fails, with no answer to lose, so its writer writes no marker. The table exists anyway so the
-- two directories keep one numbering and one schema (tests/postgres.rs compares the tables,
-- columns and indexes they build), and `heldar migrate` copies it like any other (empty) table.
CREATE TABLE writer_batches (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL
);
