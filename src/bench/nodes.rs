//! `heldar bench --nodes N`: Heldar as N `heldar serve` processes of this binary on one
//! database (docs/fleet.md, docs/scale-out.md), instead of one application in the bench's own
//! process.
//!
//! The bench seeds the cameras and schedules as usual, then starts the nodes with the settings
//! the in-process run would have (fsync, capture concurrency, no retention, no disk floor), each
//! with its own `HELDAR_NODE_ID` and API port, and the same data folder (so the same sealing key
//! and snapshots folder, as nodes on one machine share them). It waits until the cameras are
//! leased and split between the nodes by count, which must happen before the first slot. The
//! measured window's CPU is the nodes' own (user + system from `/proc/<pid>/stat`), summed; the
//! peak memory is the sum of their peaks (`VmHWM`). Slots, lateness and duplicates are counted
//! from the database afterwards, as for one process, so a slot captured by two nodes shows as a
//! duplicate.
//!
//! What it does not measure: capture durations and the app's own counters (missed slots
//! counted, capture failures), which live in each node's memory; the report leaves them at 0.
//! Every node is stopped with SIGTERM at the end and killed if it has not exited within 30 s;
//! a node that exits during the run fails the bench with its last log lines.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::config::Config;
use crate::db;

/// How long the nodes may take to start and split the cameras.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Log lines kept per node, for the error when a node dies.
const KEEP_LINES: usize = 20;

/// The nodes of one run.
pub struct Nodes {
    children: Vec<(String, Child)>,
    logs: Vec<Arc<Mutex<Vec<String>>>>,
}

impl Nodes {
    /// Start `n` nodes of `exe` on `config`'s database and data folder.
    pub fn start(exe: &PathBuf, n: usize, config: &Config, lease_s: u64) -> anyhow::Result<Nodes> {
        let mut nodes = Nodes {
            children: Vec::new(),
            logs: Vec::new(),
        };
        for i in 0..n {
            let id = format!("bench-node-{i}");
            let mut cmd = Command::new(exe);
            // Only the settings below: an operator's HELDAR_* variables (a database URL, a
            // token) must not leak into the bench's nodes.
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("HELDAR_") {
                    cmd.env_remove(k);
                }
            }
            cmd.arg("serve")
                .env("HELDAR_NODE_ID", &id)
                .env("HELDAR_DATA_DIR", &config.data_dir)
                .env("HELDAR_SNAPSHOTS_DIR", &config.snapshots_dir)
                .env("HELDAR_DATABASE_URL", &config.database_url)
                .env("HELDAR_SECRET_KEY_FILE", &config.secret_key_file)
                .env("HELDAR_API_HOST", "127.0.0.1")
                .env("HELDAR_API_PORT", "0")
                .env("HELDAR_LEASE_PERIOD_S", lease_s.to_string())
                .env("HELDAR_MIN_FREE_DISK_GB", "0")
                .env("HELDAR_SNAPSHOT_RETENTION_HOURS", "0")
                .env("HELDAR_SNAPSHOT_FSYNC", config.snapshot_fsync.to_string())
                .env(
                    "HELDAR_CAPTURE_CONCURRENCY",
                    config.capture_concurrency.to_string(),
                )
                .env(
                    "HELDAR_CAPTURE_TIMEOUT_S",
                    config.capture_timeout.as_secs().max(1).to_string(),
                )
                .env("HELDAR_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .map_err(|e| anyhow::anyhow!("starting node {id} ({}): {e}", exe.display()))?;
            // Drain its log (a full pipe would stall the node), keeping the last lines.
            let logs = Arc::new(Mutex::new(Vec::new()));
            let (keep, stderr) = (logs.clone(), child.stderr.take());
            std::thread::spawn(move || {
                let Some(stderr) = stderr else { return };
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut l = keep.lock().unwrap_or_else(|e| e.into_inner());
                    if l.len() == KEEP_LINES {
                        l.remove(0);
                    }
                    l.push(line);
                }
            });
            nodes.children.push((id, child));
            nodes.logs.push(logs);
        }
        Ok(nodes)
    }

    /// Wait until every one of `cameras` cameras is leased to a live node and the nodes hold
    /// them evenly (each at most ceil(cameras / nodes)); an error naming the holdings after
    /// [`READY_WITHIN`], or if a node exits.
    pub async fn wait_split(&mut self, pool: &db::Pool, cameras: usize) -> anyhow::Result<()> {
        let n = self.children.len();
        let share = cameras.div_ceil(n);
        let started = Instant::now();
        loop {
            self.check_alive()?;
            let leases = db::nodes::leases(pool, Utc::now()).await?;
            let mut held: BTreeMap<String, usize> = BTreeMap::new();
            for (_, node) in &leases {
                *held.entry(node.clone()).or_default() += 1;
            }
            if leases.len() == cameras
                && held.len() == n.min(cameras)
                && held.values().all(|&c| c <= share)
            {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < READY_WITHIN,
                "the nodes did not split the {cameras} cameras within {} s: {held:?}",
                READY_WITHIN.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An error with a node's last log lines if it has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for ((id, child), logs) in self.children.iter_mut().zip(&self.logs) {
            if let Some(status) = child.try_wait()? {
                let lines = logs.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                anyhow::bail!(
                    "node {id} exited during the bench ({status}); its last lines:\n{lines}"
                );
            }
        }
        Ok(())
    }

    /// The nodes' CPU seconds so far (user + system), summed.
    pub fn cpu_seconds(&self) -> f64 {
        self.children
            .iter()
            .map(|(_, c)| super::proc_cpu_seconds(c.id()))
            .sum()
    }

    /// The nodes' peak resident memory in MB (10^6 bytes), summed.
    pub fn peak_rss_mb(&self) -> f64 {
        self.children
            .iter()
            .map(|(_, c)| {
                std::fs::read_to_string(format!("/proc/{}/status", c.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmHWM:"))
                            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    })
                    .map_or(0.0, |kib: f64| kib * 1024.0 / 1e6)
            })
            .sum()
    }

    /// SIGTERM every node, then wait for each (killed after 30 s).
    pub async fn stop(mut self) {
        for (_, child) in &self.children {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for (id, child) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => {
                        tracing::warn!(node = %id, "a bench node did not stop within 30 s");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // An error path: no node outlives the bench.
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
