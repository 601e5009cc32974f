-- The install's identity: one random id per database, made once here so every database has it
-- from the moment it is migrated (a fleet's nodes share it through their one PostgreSQL). The
-- frame storage is marked with it (`.heldar-install` at the root of the snapshots folder or the
-- bucket prefix, docs/storage.md "One storage, one database"), so a process started with another
-- database cannot reconcile, prune or delete frames it did not write. `heldar migrate` carries
-- the source's id into the destination.
INSERT INTO meta (name, value)
VALUES ('install_id', 'ins_' || lower(hex(randomblob(16))))
ON CONFLICT (name) DO NOTHING;
