-- Facts about the database itself. `key_check` holds a known text sealed with the secret key, so
-- start-up can tell a wrong HELDAR_SECRET_KEY_FILE from a right one before reading any camera.
CREATE TABLE meta (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
