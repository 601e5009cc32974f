-- The install's identity, as migrations/0020_install_id.sql (the same shape: `ins_` and 32 hex
-- digits).
INSERT INTO meta (name, value)
VALUES ('install_id', 'ins_' || md5(random()::text || clock_timestamp()::text))
ON CONFLICT (name) DO NOTHING;
