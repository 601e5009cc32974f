-- The node running a job (docs/scale-out.md "The timelapse job queue"): at start-up and every
-- look, a node fails as interrupted only the running jobs of its own past runs and of nodes
-- that are gone, never a job another live node is running. NULL: a job claimed before this
-- column (or by a Heldar without nodes), treated as before.
ALTER TABLE jobs ADD COLUMN node_id TEXT;
