-- Facts about the database itself, as migrations/0004_meta.sql.
CREATE TABLE meta (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
