//! `HELDAR_*` settings (`config::Config::from_args`): the text an operator writes in `.env`.
//!
//! Invariants: no panic; a refusal is one line that names a `HELDAR_` variable and never shows
//! the API token; an accepted config keeps every clamp (scheduler interval >= 5 s, capture bytes
//! >= 1024, concurrencies >= 1, intervals >= 1 s), uses only sqlite: or postgres: database URLs
//! (PostgreSQL's with a host and a database name), and never
//! listens beyond loopback without a token of at least 16 characters.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use heldar::config::{Config, ServeArgs};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Val {
    Default,
    Num(i64),
    Float(f64),
    Word(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    data_dir: Val,
    snapshots_dir: Option<Val>,
    database_url: Option<Val>,
    api_host: Val,
    api_port: Val,
    ffmpeg_bin: Val,
    scheduler_enabled: Val,
    scheduler_interval_s: Val,
    retention_hours: Val,
    retention_interval_s: Val,
    max_gb: Val,
    min_free_gb: Val,
    capture_timeout_s: Val,
    capture_concurrency: Val,
    http_max_connections: Option<Val>,
    allow_metadata_hosts: Val,
    metrics_auth: Val,
    unreachable_backoff_max_s: Val,
    timelapse_concurrency: Val,
    timelapse_max_frames: Val,
    timelapse_ttl_hours: Val,
    ffmpeg_concurrency: Val,
    capture_max_bytes: Val,
    fsync: Val,
    api_token: Option<Val>,
    secret_key_file: Option<Val>,
    /// Arbitrary log filters only sometimes: they are tracing's parser, not ours.
    log: Option<String>,
}

const WORDS: &[&str] = &[
    "",
    " ",
    "true",
    "FALSE",
    "yes",
    "off",
    "1",
    "0",
    "localhost",
    "::1",
    "[::1]",
    "0.0.0.0",
    "127.0.0.1",
    "10.1.2.3",
    "sqlite://x.db",
    "sqlite::memory:",
    "postgres://h/db",
    "1e3",
    "NaN",
    "inf",
    "-0",
    " 42 ",
    "0123456789abcdef",
    "0123456789abcdef0",
    "+5",
    "4.5",
    "token",
    "none",
];

fn text(v: &Val, default: &str) -> String {
    match v {
        Val::Default => default.to_string(),
        Val::Num(n) => n.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Word(i) => WORDS[*i as usize % WORDS.len()].to_string(),
        Val::Any(s) => s.clone(),
    }
}

fuzz_target!(|i: Input| {
    let args = ServeArgs {
        data_dir: text(&i.data_dir, "./data"),
        snapshots_dir: i.snapshots_dir.as_ref().map(|v| text(v, "./snaps")),
        database_url: i
            .database_url
            .as_ref()
            .map(|v| text(v, "sqlite://./data/h.db")),
        db_outage_buffer: text(&i.capture_concurrency, "10000"),
        db_outage_max_s: text(&i.retention_interval_s, "60"),
        api_host: text(&i.api_host, "127.0.0.1"),
        api_port: text(&i.api_port, "8000"),
        ffmpeg_bin: text(&i.ffmpeg_bin, "ffmpeg"),
        snapshot_scheduler_enabled: text(&i.scheduler_enabled, "true"),
        snapshot_scheduler_interval_s: text(&i.scheduler_interval_s, "60"),
        camera_cache_ttl_s: text(&i.scheduler_interval_s, "30"),
        snapshot_retention_hours: text(&i.retention_hours, "168"),
        retention_interval_s: text(&i.retention_interval_s, "300"),
        snapshot_max_gb: text(&i.max_gb, "0"),
        min_free_disk_gb: text(&i.min_free_gb, "1"),
        capture_timeout_s: text(&i.capture_timeout_s, "20"),
        capture_concurrency: text(&i.capture_concurrency, "64"),
        ffmpeg_concurrency: text(&i.ffmpeg_concurrency, "16"),
        capture_max_bytes: text(&i.capture_max_bytes, "20971520"),
        snapshot_fsync: text(&i.fsync, "true"),
        api_token: i.api_token.as_ref().map(|v| text(v, "0123456789abcdef")),
        http_max_connections: i.http_max_connections.as_ref().map(|v| text(v, "512")),
        allow_metadata_hosts: text(&i.allow_metadata_hosts, "false"),
        metrics_auth: text(&i.metrics_auth, "token"),
        unreachable_backoff_max_s: text(&i.unreachable_backoff_max_s, "300"),
        rtsp_warm_max_interval_s: text(&i.scheduler_interval_s, "60"),
        rtsp_warm_max_sessions: text(&i.ffmpeg_concurrency, "256"),
        rtsp_decode_concurrency: text(&i.capture_concurrency, "auto"),
        rtsp_gop_max_bytes: text(&i.capture_max_bytes, "16777216"),
        rtsp_gop_max_age_s: text(&i.retention_interval_s, "30"),
        rtsp_stall_s: text(&i.capture_timeout_s, "10"),
        timelapse_concurrency: text(&i.timelapse_concurrency, "1"),
        timelapse_max_frames: text(&i.timelapse_max_frames, "100000"),
        timelapse_ttl_hours: text(&i.timelapse_ttl_hours, "720"),
        offline_after_failures: text(&i.ffmpeg_concurrency, "3"),
        offline_after_s: text(&i.scheduler_interval_s, "auto"),
        webhook_timeout_s: text(&i.capture_timeout_s, "10"),
        webhook_max_attempts: text(&i.ffmpeg_concurrency, "6"),
        webhook_retry_initial_ms: text(&i.retention_interval_s, "1000"),
        webhook_retry_max_s: text(&i.retention_interval_s, "300"),
        webhook_queue: text(&i.capture_concurrency, "1000"),
        node_id: None,
        lease_period_s: text(&i.scheduler_interval_s, "15"),
        // MQTT off and local storage: their settings have their own unit tests (config::tests).
        mqtt: heldar::config::MqttArgs {
            mqtt_prefix: "heldar".into(),
            mqtt_discovery_prefix: "homeassistant".into(),
            ..Default::default()
        },
        storage: heldar::config::StorageArgs {
            s3_presign_seconds: "0".into(),
            ..Default::default()
        },
        secret_key_file: i.secret_key_file.as_ref().map(|v| text(v, "./k")),
        log: i
            .log
            .clone()
            .filter(|l| l.len() <= 64)
            .unwrap_or_else(|| "info".into()),
    };
    match Config::from_args(&args) {
        Ok((c, warnings)) => {
            assert!(c.scheduler_interval >= Duration::from_secs(5));
            assert!(c.retention_interval >= Duration::from_secs(1));
            assert!(c.capture_timeout >= Duration::from_secs(1));
            assert!(c.capture_concurrency >= 1 && c.ffmpeg_concurrency >= 1);
            assert!(c.timelapse_concurrency >= 1 && c.timelapse_max_frames >= 1);
            assert!(c.capture_max_bytes >= 1024);
            assert!(c.rtsp.decode_concurrency >= 1 && c.rtsp.gop_max_bytes >= 65_536);
            assert!(
                c.database_url.starts_with("sqlite:")
                    || c.database_url.starts_with("postgres://")
                    || c.database_url.starts_with("postgresql://"),
                "{:?}",
                c.database_url
            );
            if !c.api_host.is_loopback() {
                let t = c
                    .api_token
                    .as_deref()
                    .expect("non-loopback without a token");
                assert!(t.len() >= 16);
            }
            if let Some(t) = &c.api_token {
                assert!(t.len() >= 16 && !t.trim().is_empty());
            }
            for w in warnings {
                assert!(w.starts_with("HELDAR_") && !w.contains('\n'), "{w:?}");
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(line.starts_with("HELDAR_"), "{line:?}");
            assert!(!line.contains('\n'), "not one line: {line:?}");
            if let Some(token) = args.api_token.as_deref().filter(|t| t.len() >= 8) {
                let others = format!(
                    "{:?}",
                    ServeArgs {
                        api_token: None,
                        ..args.clone()
                    }
                );
                if !others.contains(token) && !e.allowed.contains(token) {
                    assert!(!line.contains(token), "the token shows in {line:?}");
                }
            }
        }
    }
});
