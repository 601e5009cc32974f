//! Configuration: the `HELDAR_*` environment variables (docs/design.md §4) turned into one typed
//! [`Config`].
//!
//! Nothing else in Heldar reads the environment. Every variable is also a `heldar serve` flag
//! (clap reads the flag first, then the variable, then the default), and `heldar serve --help`
//! lists them all with their defaults.
//!
//! Parsing happens in two steps on purpose: clap collects the raw text ([`ServeArgs`]), then
//! [`Config::from_args`] turns it into typed values. That way a bad value stops start-up with one
//! line that names the *variable*, the value and what is allowed — an operator edits a `.env` file,
//! not a flag. Numbers outside their range are clamped (as the Heldar kernel clamps them) and a
//! warning names the variable and the value used.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Raw settings as given on the command line or in the environment. Every field is text so that
/// [`Config::from_args`] can say which variable was wrong.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Root for the database and media.
    #[arg(long, env = "HELDAR_DATA_DIR", default_value = "./data")]
    pub data_dir: String,
    /// Frame files [default: $HELDAR_DATA_DIR/snapshots].
    #[arg(long, env = "HELDAR_SNAPSHOTS_DIR")]
    pub snapshots_dir: Option<String>,
    /// Database URL [default: sqlite://$HELDAR_DATA_DIR/heldar.db].
    // Its value is not shown in --help: a postgres:// URL carries a password.
    #[arg(long, env = "HELDAR_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Writes (frame rows, camera status) held in memory while the database is unavailable.
    #[arg(long, env = "HELDAR_DB_OUTAGE_BUFFER", default_value = "10000")]
    pub db_outage_buffer: String,
    /// How long (seconds) new writes are held while the database is unavailable.
    #[arg(long, env = "HELDAR_DB_OUTAGE_MAX_S", default_value = "60")]
    pub db_outage_max_s: String,
    /// HTTP listen address (an IP address, or `localhost`).
    #[arg(long, env = "HELDAR_API_HOST", default_value = "127.0.0.1")]
    pub api_host: String,
    /// HTTP listen port; 0 picks a free port and logs it.
    #[arg(long, env = "HELDAR_API_PORT", default_value = "8000")]
    pub api_port: String,
    /// ffmpeg used for RTSP capture.
    #[arg(long, env = "HELDAR_FFMPEG_BIN", default_value = "ffmpeg")]
    pub ffmpeg_bin: String,
    /// Spawn the snapshot scheduler at all (true/false).
    #[arg(
        long,
        env = "HELDAR_SNAPSHOT_SCHEDULER_ENABLED",
        default_value = "true"
    )]
    pub snapshot_scheduler_enabled: String,
    /// How often the scheduler re-reads schedules changed outside this process (seconds, min 5).
    #[arg(
        long,
        env = "HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S",
        default_value = "60"
    )]
    pub snapshot_scheduler_interval_s: String,
    /// How long the scheduler trusts a camera's cached row before reading it again (seconds,
    /// min 1): edits made through another node reach its captures within this.
    #[arg(long, env = "HELDAR_CAMERA_CACHE_TTL_S", default_value = "30")]
    pub camera_cache_ttl_s: String,
    /// Age limit of captured frames in hours (0 = keep forever).
    #[arg(long, env = "HELDAR_SNAPSHOT_RETENTION_HOURS", default_value = "168")]
    pub snapshot_retention_hours: String,
    /// Retention sweep period (seconds).
    #[arg(long, env = "HELDAR_RETENTION_INTERVAL_S", default_value = "300")]
    pub retention_interval_s: String,
    /// Size cap of the snapshots directory in GB, oldest frames pruned first (0 = off).
    #[arg(long, env = "HELDAR_SNAPSHOT_MAX_GB", default_value = "0")]
    pub snapshot_max_gb: String,
    /// Free-disk floor in GB, oldest frames pruned first.
    #[arg(long, env = "HELDAR_MIN_FREE_DISK_GB", default_value = "1")]
    pub min_free_disk_gb: String,
    /// One capture's deadline (seconds).
    #[arg(long, env = "HELDAR_CAPTURE_TIMEOUT_S", default_value = "20")]
    pub capture_timeout_s: String,
    /// Captures in flight at once per lane (cameras in good standing; cameras whose last capture
    /// failed), all back-ends together; `auto` sizes it from the open-file limit.
    #[arg(long, env = "HELDAR_CAPTURE_CONCURRENCY", default_value = "auto")]
    pub capture_concurrency: String,
    /// ffmpeg processes at once.
    #[arg(long, env = "HELDAR_FFMPEG_CONCURRENCY", default_value = "16")]
    pub ffmpeg_concurrency: String,
    /// Largest camera response accepted, in bytes.
    #[arg(long, env = "HELDAR_CAPTURE_MAX_BYTES", default_value = "20971520")]
    pub capture_max_bytes: String,
    /// fsync each frame (and its directory) before recording it (true/false).
    #[arg(long, env = "HELDAR_SNAPSHOT_FSYNC", default_value = "true")]
    pub snapshot_fsync: String,
    /// Bootstrap admin token; required when listening on a non-loopback address.
    #[arg(long, env = "HELDAR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Key sealing camera passwords [default: $HELDAR_DATA_DIR/secret.key].
    #[arg(long, env = "HELDAR_SECRET_KEY_FILE")]
    pub secret_key_file: Option<String>,
    /// tracing filter, e.g. `info` or `heldar=debug,info`.
    #[arg(long, env = "HELDAR_LOG", default_value = "info")]
    pub log: String,
    /// HTTP connections served at once; more are answered 503 and closed [default: sized from
    /// the file-descriptor limit, keeping a reserve for capture and storage].
    #[arg(long, env = "HELDAR_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<String>,
    /// Allow cloud instance-metadata addresses (169.254.169.254, fd00:ec2::254, …) as camera
    /// hosts (true/false). Off: such a camera is refused with `forbidden_host`.
    #[arg(long, env = "HELDAR_ALLOW_METADATA_HOSTS", default_value = "false")]
    pub allow_metadata_hosts: String,
    /// Who may read /metrics while authentication is on: `token` (a viewer token, like the rest
    /// of the API) or `none` (anyone who can reach the server, for a Prometheus without a token).
    #[arg(long, env = "HELDAR_METRICS_AUTH", default_value = "token")]
    pub metrics_auth: String,
    /// Longest wait between scheduled captures of a camera that keeps being unreachable or
    /// timing out (seconds; the wait doubles from the schedule's interval up to this; 0 = never
    /// back off, try every slot).
    #[arg(long, env = "HELDAR_UNREACHABLE_BACKOFF_MAX_S", default_value = "300")]
    pub unreachable_backoff_max_s: String,
    /// Native RTSP: cameras whose shortest enabled schedule interval is at most this many
    /// seconds keep a warm session (0 = never; longer intervals connect per capture).
    #[arg(long, env = "HELDAR_RTSP_WARM_MAX_INTERVAL_S", default_value = "60")]
    pub rtsp_warm_max_interval_s: String,
    /// Native RTSP: warm sessions open at once, at most (more cameras connect per capture).
    #[arg(long, env = "HELDAR_RTSP_WARM_MAX_SESSIONS", default_value = "256")]
    pub rtsp_warm_max_sessions: String,
    /// Native RTSP: H.264 decodes at once, all cameras together; `auto` is one per CPU core.
    #[arg(long, env = "HELDAR_RTSP_DECODE_CONCURRENCY", default_value = "auto")]
    pub rtsp_decode_concurrency: String,
    /// Native RTSP: bytes of compressed frames a warm session keeps since the last keyframe.
    #[arg(long, env = "HELDAR_RTSP_GOP_MAX_BYTES", default_value = "16777216")]
    pub rtsp_gop_max_bytes: String,
    /// Native RTSP: seconds a warm session keeps frames since the last keyframe.
    #[arg(long, env = "HELDAR_RTSP_GOP_MAX_AGE_S", default_value = "30")]
    pub rtsp_gop_max_age_s: String,
    /// Native RTSP: a warm session that receives nothing for this many seconds is reconnected.
    #[arg(long, env = "HELDAR_RTSP_STALL_S", default_value = "10")]
    pub rtsp_stall_s: String,
    /// Timelapse videos encoded at once (each one ffmpeg, niced); more wait in the queue.
    #[arg(long, env = "HELDAR_TIMELAPSE_CONCURRENCY", default_value = "1")]
    pub timelapse_concurrency: String,
    /// Most frames one timelapse video may have (after `every_nth`).
    #[arg(long, env = "HELDAR_TIMELAPSE_MAX_FRAMES", default_value = "100000")]
    pub timelapse_max_frames: String,
    /// Timelapse videos (exports and rules' alike) are deleted this many hours after they were
    /// made (0 = keep forever).
    #[arg(long, env = "HELDAR_TIMELAPSE_TTL_HOURS", default_value = "720")]
    pub timelapse_ttl_hours: String,
    /// A camera is offline after this many failed captures in a row (0 = never by count).
    #[arg(long, env = "HELDAR_OFFLINE_AFTER_FAILURES", default_value = "3")]
    pub offline_after_failures: String,
    /// A camera with an enabled schedule is offline after this many seconds without a
    /// successful capture; `auto` is 3 × its shortest interval, at least 60 s (0 = never by time).
    #[arg(long, env = "HELDAR_OFFLINE_AFTER_S", default_value = "auto")]
    pub offline_after_s: String,
    /// Webhooks: one delivery attempt's deadline (seconds, connect to last byte).
    #[arg(long, env = "HELDAR_WEBHOOK_TIMEOUT_S", default_value = "10")]
    pub webhook_timeout_s: String,
    /// Webhooks: attempts per delivery, the first included (at least 1).
    #[arg(long, env = "HELDAR_WEBHOOK_MAX_ATTEMPTS", default_value = "6")]
    pub webhook_max_attempts: String,
    /// Webhooks: wait before the first retry (milliseconds); it doubles per retry.
    #[arg(long, env = "HELDAR_WEBHOOK_RETRY_INITIAL_MS", default_value = "1000")]
    pub webhook_retry_initial_ms: String,
    /// Webhooks: longest wait between two attempts (seconds).
    #[arg(long, env = "HELDAR_WEBHOOK_RETRY_MAX_S", default_value = "300")]
    pub webhook_retry_max_s: String,
    /// Webhooks: events waiting per subscription; beyond it the oldest is dropped and counted.
    #[arg(long, env = "HELDAR_WEBHOOK_QUEUE", default_value = "1000")]
    pub webhook_queue: String,
    /// This node's id among the Heldar processes sharing the database (docs/fleet.md)
    /// [default: this machine's name and the process id, e.g. `cam-box-4242`].
    #[arg(long, env = "HELDAR_NODE_ID")]
    pub node_id: Option<String>,
    /// How long a node's hold on a camera lasts without renewal (seconds, 3 to 300): a node that
    /// dies loses its cameras to the others within this.
    #[arg(long, env = "HELDAR_LEASE_PERIOD_S", default_value = "15")]
    pub lease_period_s: String,
    /// MQTT (docs/integrations.md): off unless HELDAR_MQTT_URL is set.
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// Where frames are stored (docs/storage.md): the local snapshots folder unless
    /// HELDAR_STORAGE_URL names an S3 bucket.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// The frame storage settings as given (docs/storage.md). All text, like [`ServeArgs`]. The
/// `AWS_*` variables are the standard ones every S3 client reads; they are read here so that
/// this module stays the only reader of the environment, and their values are hidden from
/// `--help`.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// Frame storage: unset or `file:` = the local snapshots folder; `s3://bucket[/prefix]` =
    /// an S3-compatible bucket (docs/storage.md).
    #[arg(long, env = "HELDAR_STORAGE_URL", hide_env_values = true)]
    pub storage_url: Option<String>,
    /// With S3 storage: answer `/media` frame requests with a 302 to a presigned GET URL valid
    /// this many seconds, instead of streaming the object through Heldar (0 = stream).
    #[arg(long, env = "HELDAR_S3_PRESIGN_SECONDS", default_value = "0")]
    pub s3_presign_seconds: String,
    /// S3 endpoint (MinIO, Garage, …); unset = AWS itself. `http://` endpoints are allowed.
    #[arg(long, env = "AWS_ENDPOINT_URL", hide_env_values = true)]
    pub aws_endpoint_url: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long, env = "AWS_REGION", hide_env_values = true)]
    pub aws_region: Option<String>,
    /// S3 access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    /// S3 secret access key (prefer the environment: a flag is visible to `ps`).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    /// S3 session token, for temporary credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,
}

/// Where frames (and timelapse videos) are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageConfig {
    /// The local snapshots folder (HELDAR_SNAPSHOTS_DIR), as always.
    #[default]
    Local,
    S3(S3Config),
}

/// An S3-compatible bucket. Its `Debug` masks the secret key and the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// `None`: AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// `Some`: the media route redirects to presigned URLs valid this long.
    pub presign: Option<Duration>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .field("presign", &self.presign)
            .finish()
    }
}

impl S3Config {
    /// `s3://bucket/prefix`, for logs and the system page (never with credentials).
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Longest presigned URL S3 accepts (SigV4: 7 days).
const MAX_PRESIGN_SECONDS: u64 = 7 * 24 * 3600;

impl StorageConfig {
    /// The settings from their raw text. `file:` may name the snapshots folder
    /// (`file:/srv/frames`); the returned path, if any, replaces HELDAR_SNAPSHOTS_DIR.
    pub fn from_args(a: &StorageArgs) -> Result<(StorageConfig, Option<PathBuf>), ConfigError> {
        let presign_s = parse_num::<u64>(
            "HELDAR_S3_PRESIGN_SECONDS",
            &a.s3_presign_seconds,
            "a whole number of seconds (0 = stream frames through Heldar)",
        )?;
        if presign_s > MAX_PRESIGN_SECONDS {
            return Err(ConfigError {
                var: "HELDAR_S3_PRESIGN_SECONDS",
                value: a.s3_presign_seconds.clone(),
                allowed: format!(
                    "at most {MAX_PRESIGN_SECONDS} (7 days, the longest S3 signs for)"
                ),
            });
        }
        let Some(raw) = a
            .storage_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok((StorageConfig::Local, None));
        };
        let bad = |allowed: &str| ConfigError {
            var: "HELDAR_STORAGE_URL",
            value: crate::camera::mask::mask_url(raw),
            allowed: allowed.into(),
        };
        const FORMS: &str = "`s3://bucket/prefix` for an S3-compatible bucket, or `file:` \
                             (optionally `file:/path`) for the local snapshots folder";
        if let Some(path) = raw.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Ok((StorageConfig::Local, None));
            }
            if !path.starts_with('/') {
                return Err(bad(
                    "an absolute path after `file:`, e.g. file:/srv/heldar/snapshots",
                ));
            }
            return Ok((StorageConfig::Local, Some(PathBuf::from(path))));
        }
        let Some(rest) = raw.strip_prefix("s3://") else {
            return Err(bad(&format!("an unknown kind of storage; use {FORMS}")));
        };
        if rest.contains('@') || rest.contains('?') || rest.contains('#') {
            return Err(bad(
                "a bucket and prefix only, e.g. s3://frames/site-a: credentials go in \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the endpoint in AWS_ENDPOINT_URL",
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules (3-63 characters, lower case, digits, dots and hyphens,
        // starting and ending with a letter or digit).
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.as_bytes()[0].is_ascii_alphanumeric()
            && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
        if bucket.is_empty() {
            return Err(bad("a bucket name after s3://, e.g. s3://frames/site-a"));
        }
        if !bucket_ok {
            return Err(bad(
                "a valid bucket name (3 to 63 lower-case letters, digits, dots and hyphens) \
                 after s3://, e.g. s3://frames/site-a",
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        if !prefix.is_empty() && !prefix_ok {
            return Err(bad(
                "a prefix of plain path segments (letters, digits, `-`, `_`, `.`), e.g. \
                 s3://frames/site-a/heldar",
            ));
        }
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let (Some(access_key_id), Some(secret_access_key)) =
            (given(&a.aws_access_key_id), given(&a.aws_secret_access_key))
        else {
            return Err(bad(
                "S3 storage needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        };
        let endpoint = match given(&a.aws_endpoint_url) {
            None => None,
            Some(e) => {
                let ok = url::Url::parse(&e).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some_and(|h| !h.is_empty())
                        && u.username().is_empty()
                        && u.password().is_none()
                });
                if !ok {
                    return Err(ConfigError {
                        var: "AWS_ENDPOINT_URL",
                        value: crate::camera::mask::mask_url(&e),
                        allowed:
                            "an http:// or https:// URL of the S3 endpoint without \
                                  credentials, e.g. https://s3.example.net or http://127.0.0.1:9000"
                                .into(),
                    });
                }
                Some(e.trim_end_matches('/').to_string())
            }
        };
        Ok((
            StorageConfig::S3(S3Config {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                endpoint,
                region: given(&a.aws_region).unwrap_or_else(|| "us-east-1".into()),
                access_key_id,
                secret_access_key,
                session_token: given(&a.aws_session_token),
                presign: (presign_s > 0).then(|| Duration::from_secs(presign_s)),
            }),
            None,
        ))
    }
}

/// The MQTT settings as given (docs/integrations.md). All text, like [`ServeArgs`].
#[derive(Args, Debug, Clone, Default)]
pub struct MqttArgs {
    /// MQTT broker, `mqtt://host[:1883]` or `mqtts://host[:8883]` (TLS); unset: MQTT is off.
    #[arg(long, env = "HELDAR_MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// MQTT user name.
    #[arg(long, env = "HELDAR_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,
    /// MQTT password (prefer the environment: a flag is visible to `ps`).
    #[arg(long, env = "HELDAR_MQTT_PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// MQTT client id [default: heldar-HOSTNAME].
    #[arg(long, env = "HELDAR_MQTT_CLIENT_ID")]
    pub mqtt_client_id: Option<String>,
    /// Topic prefix: frames go to PREFIX/CAMERA/snapshot, and so on.
    #[arg(long, env = "HELDAR_MQTT_PREFIX", default_value = "heldar")]
    pub mqtt_prefix: String,
    /// Home Assistant discovery prefix; empty turns discovery off.
    #[arg(
        long,
        env = "HELDAR_MQTT_DISCOVERY_PREFIX",
        default_value = "homeassistant"
    )]
    pub mqtt_discovery_prefix: String,
    /// PEM file of the CA(s) that sign an mqtts:// broker's certificate, trusted besides the
    /// public roots.
    #[arg(long, env = "HELDAR_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<String>,
}

/// Where and how Heldar talks MQTT. Its `Debug` masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS, verified against the public roots and `ca_file`.
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
    /// No leading or trailing `/`, no wildcard.
    pub prefix: String,
    /// `None`: no Home Assistant discovery.
    pub discovery_prefix: Option<String>,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("client_id", &self.client_id)
            .field("prefix", &self.prefix)
            .field("discovery_prefix", &self.discovery_prefix)
            .finish()
    }
}

impl MqttConfig {
    /// `mqtt://host:port` or `mqtts://host:port`, for logs (never with credentials).
    pub fn broker(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        match self.host.contains(':') {
            true => format!("{scheme}://[{}]:{}", self.host, self.port),
            false => format!("{scheme}://{}:{}", self.host, self.port),
        }
    }

    /// With HELDAR_MQTT_URL unset, MQTT is off, and another HELDAR_MQTT_* setting given a value
    /// of its own (not its default) is refused: it would do nothing, and the likely cause is a
    /// misspelt or forgotten URL variable, which is better said at start than found out when no
    /// message arrives. The password's value is never quoted.
    fn unused(a: &MqttArgs) -> Result<(), ConfigError> {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|t| !t.trim().is_empty());
        let set: [(&'static str, bool, &str); 6] = [
            (
                "HELDAR_MQTT_USERNAME",
                given(&a.mqtt_username),
                a.mqtt_username.as_deref().unwrap_or(""),
            ),
            ("HELDAR_MQTT_PASSWORD", given(&a.mqtt_password), "***"),
            (
                "HELDAR_MQTT_CLIENT_ID",
                given(&a.mqtt_client_id),
                a.mqtt_client_id.as_deref().unwrap_or(""),
            ),
            (
                "HELDAR_MQTT_PREFIX",
                a.mqtt_prefix != "heldar",
                &a.mqtt_prefix,
            ),
            (
                "HELDAR_MQTT_DISCOVERY_PREFIX",
                a.mqtt_discovery_prefix != "homeassistant",
                &a.mqtt_discovery_prefix,
            ),
            (
                "HELDAR_MQTT_CA_FILE",
                given(&a.mqtt_ca_file),
                a.mqtt_ca_file.as_deref().unwrap_or(""),
            ),
        ];
        match set.into_iter().find(|(_, is_set, _)| *is_set) {
            None => Ok(()),
            Some((var, _, value)) => Err(ConfigError {
                var,
                value: value.to_string(),
                allowed: format!(
                    "it is set but HELDAR_MQTT_URL is not, so MQTT is off and {var} would do \
                     nothing; set HELDAR_MQTT_URL (e.g. mqtt://192.168.1.10:1883) to turn MQTT \
                     on, or unset {var}"
                ),
            }),
        }
    }

    /// The settings from their raw text; `None` when HELDAR_MQTT_URL is unset or empty.
    pub fn from_args(a: &MqttArgs) -> Result<Option<MqttConfig>, ConfigError> {
        let Some(raw) = a
            .mqtt_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Self::unused(a).map(|()| None);
        };
        let bad = |value: String, allowed: &str| ConfigError {
            var: "HELDAR_MQTT_URL",
            value,
            allowed: allowed.into(),
        };
        let url = url::Url::parse(raw).map_err(|e| {
            bad(
                crate::camera::mask::mask_url(raw),
                &format!(
                    "a broker URL such as mqtt://192.168.1.10:1883 or mqtts://broker:8883 ({e})"
                ),
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                crate::camera::mask::mask_url(raw),
                "a URL without credentials: set HELDAR_MQTT_USERNAME and HELDAR_MQTT_PASSWORD",
            ));
        }
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => {
                return Err(bad(
                    crate::camera::mask::mask_url(raw),
                    "an mqtt:// or mqtts:// URL, e.g. mqtt://192.168.1.10:1883",
                ))
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => {
                return Err(bad(
                    crate::camera::mask::mask_url(raw),
                    "a URL with a host, e.g. mqtt://broker:1883",
                ))
            }
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                crate::camera::mask::mask_url(raw),
                "scheme, host and port only, e.g. mqtt://broker:1883 (the topic prefix is \
                 HELDAR_MQTT_PREFIX)",
            ));
        }
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        let topic_part = |var: &'static str, v: &str, empty_ok: bool| {
            let v = v.trim().trim_matches('/');
            let ok = match v.is_empty() {
                true => empty_ok,
                false => !v.contains(['+', '#', '\0']) && !v.split('/').any(str::is_empty),
            };
            match ok {
                true => Ok(v.to_string()),
                false => Err(ConfigError {
                    var,
                    value: v.to_string(),
                    allowed: "topic levels separated by `/`, without `+`, `#` or empty levels, \
                              e.g. `heldar` or `home/heldar`"
                        .into(),
                }),
            }
        };
        let prefix = topic_part("HELDAR_MQTT_PREFIX", &a.mqtt_prefix, false)?;
        let discovery = topic_part(
            "HELDAR_MQTT_DISCOVERY_PREFIX",
            &a.mqtt_discovery_prefix,
            true,
        )?;
        let client_id = match a.mqtt_client_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                if id.len() > 128 || id.chars().any(char::is_control) {
                    return Err(ConfigError {
                        var: "HELDAR_MQTT_CLIENT_ID",
                        value: id.to_string(),
                        allowed: "at most 128 printable characters".into(),
                    });
                }
                id.to_string()
            }
            _ => format!("heldar-{}", hostname()),
        };
        let text = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let username = text(&a.mqtt_username);
        let password = text(&a.mqtt_password);
        if password.is_some() && username.is_none() {
            return Err(ConfigError {
                var: "HELDAR_MQTT_USERNAME",
                value: String::new(),
                allowed: "a user name: HELDAR_MQTT_PASSWORD is set, and MQTT sends a password \
                          only with a user name"
                    .into(),
            });
        }
        let ca_file = match a.mqtt_ca_file.as_deref().map(str::trim) {
            Some(f) if !f.is_empty() => {
                if !tls {
                    return Err(ConfigError {
                        var: "HELDAR_MQTT_CA_FILE",
                        value: f.to_string(),
                        allowed: "unset with an mqtt:// broker: a CA file is for TLS, \
                                  HELDAR_MQTT_URL=mqtts://…"
                            .into(),
                    });
                }
                Some(PathBuf::from(f))
            }
            _ => None,
        };
        Ok(Some(MqttConfig {
            host,
            port,
            tls,
            ca_file,
            username,
            password,
            client_id,
            prefix,
            discovery_prefix: (!discovery.is_empty()).then_some(discovery),
        }))
    }
}

/// This machine's name, for the default MQTT client id (`node` when it cannot be read).
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "node".into()
    } else {
        name
    }
}

/// When a camera with an enabled schedule counts as offline for lack of frames
/// (HELDAR_OFFLINE_AFTER_S).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineAfter {
    /// 3 × the camera's shortest enabled interval, at least 60 s.
    Auto,
    /// The same time for every camera.
    Fixed(Duration),
    /// Never by time (failures in a row still count).
    Off,
}

/// Webhook delivery settings (`services::webhooks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub queue: usize,
}

/// Who may read `/metrics` (HELDAR_METRICS_AUTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAuth {
    /// As the rest of the API: a viewer token while authentication is on.
    Token,
    /// Anyone who can reach the server, whether authentication is on or not.
    None,
}

/// The typed settings every part of Heldar reads. A `Config` that exists is usable.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub snapshots_dir: PathBuf,
    pub database_url: String,
    /// What the writer holds while the database is unavailable (HELDAR_DB_OUTAGE_BUFFER,
    /// HELDAR_DB_OUTAGE_MAX_S; docs/operations.md).
    pub db_outage: crate::db::writer::Buffer,
    pub api_host: IpAddr,
    pub api_port: u16,
    pub ffmpeg_bin: PathBuf,
    pub scheduler_enabled: bool,
    pub scheduler_interval: Duration,
    /// HELDAR_CAMERA_CACHE_TTL_S: how long the scheduler's camera cache trusts an entry.
    pub camera_cache_ttl: Duration,
    /// `None` keeps frames forever.
    pub retention_age: Option<Duration>,
    pub retention_interval: Duration,
    /// `None` is no size cap.
    pub snapshot_max_bytes: Option<u64>,
    pub min_free_disk_bytes: u64,
    pub capture_timeout: Duration,
    pub capture_concurrency: usize,
    pub ffmpeg_concurrency: usize,
    pub capture_max_bytes: usize,
    pub snapshot_fsync: bool,
    pub api_token: Option<String>,
    pub secret_key_file: PathBuf,
    pub log: String,
    /// `None`: sized from the file-descriptor limit when the server starts
    /// (`fd_limit::default_http_connections`).
    pub http_max_connections: Option<usize>,
    /// Whether a camera may be a cloud metadata endpoint (`capture::hosts`); default no.
    pub allow_metadata_hosts: bool,
    pub metrics_auth: MetricsAuth,
    /// The cap of the unreachable-camera backoff (`ops::backoff`); `None`: no such backoff.
    pub unreachable_backoff_max: Option<Duration>,
    /// The native RTSP path's settings (`capture::native`).
    pub rtsp: RtspConfig,
    /// Timelapse videos: `$HELDAR_DATA_DIR/timelapses` (not a setting of its own: outside
    /// snapshots_dir, whose scan knows only frames).
    pub timelapses_dir: PathBuf,
    /// Encodings at once (at least 1).
    pub timelapse_concurrency: usize,
    /// Frames per video at most (at least 1).
    pub timelapse_max_frames: u64,
    /// `None` keeps videos forever.
    pub timelapse_ttl: Option<Duration>,
    /// MQTT and Home Assistant discovery (`services::mqtt`); `None`: off.
    pub mqtt: Option<MqttConfig>,
    /// Failed captures in a row that make a camera offline (`ops::outages`); 0: never by count.
    pub offline_after_failures: u32,
    /// Time without a frame that makes a scheduled camera offline.
    pub offline_after: OfflineAfter,
    pub webhooks: WebhookConfig,
    /// This process's node (docs/fleet.md).
    pub node: NodeConfig,
    /// Where frames and timelapse videos are kept (docs/storage.md).
    pub storage: StorageConfig,
}

/// Who this process is among the nodes sharing the database, and how long its camera leases
/// last (`ops::nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// HELDAR_NODE_ID, or `{hostname}-{pid}`.
    pub id: String,
    /// This machine's name.
    pub name: String,
    /// HELDAR_LEASE_PERIOD_S.
    pub lease_period: Duration,
}

/// The bounds of HELDAR_LEASE_PERIOD_S, in seconds.
pub const LEASE_PERIOD_BOUNDS: (u64, u64) = (3, 300);

impl NodeConfig {
    fn from_args(id: Option<&str>, lease_period_s: &str) -> Result<NodeConfig, ConfigError> {
        let (min, max) = LEASE_PERIOD_BOUNDS;
        let bad = || ConfigError {
            var: "HELDAR_LEASE_PERIOD_S",
            value: lease_period_s.to_string(),
            allowed: format!(
                "a whole number of seconds from {min} to {max} (how long a node's hold on a \
                 camera lasts without renewal; default 15)"
            ),
        };
        let secs: u64 = lease_period_s.trim().parse().map_err(|_| bad())?;
        if !(min..=max).contains(&secs) {
            return Err(bad());
        }
        let name = hostname();
        let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            None => format!("{name}-{}", std::process::id()),
            Some(id) => {
                let ok = id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    return Err(ConfigError {
                        var: "HELDAR_NODE_ID",
                        value: id.to_string(),
                        allowed: "up to 64 letters, digits, `-`, `_` or `.`, unique among the \
                                  nodes sharing the database (unset: hostname and process id)"
                            .into(),
                    });
                }
                id.to_string()
            }
        };
        Ok(NodeConfig {
            id,
            name,
            lease_period: Duration::from_secs(secs),
        })
    }
}

/// The native RTSP path's settings (docs/rtsp.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspConfig {
    /// Cameras whose shortest enabled interval is at most this keep a warm session; zero: none.
    pub warm_max_interval: Duration,
    pub warm_max_sessions: usize,
    pub decode_concurrency: usize,
    pub gop_max_bytes: usize,
    pub gop_max_age: Duration,
    pub stall: Duration,
}

/// A setting that cannot be used. Its `Display` is the one line start-up prints.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}={value:?} cannot be used: {allowed}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub allowed: String,
}

const GB: f64 = 1_000_000_000.0;

impl Config {
    /// Turn raw settings into a `Config`. Returns the warnings for clamped values alongside it so
    /// the caller logs them once logging is up.
    pub fn from_args(args: &ServeArgs) -> Result<(Config, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let data_dir = PathBuf::from(non_empty("HELDAR_DATA_DIR", &args.data_dir)?);
        let (storage, file_dir) = StorageConfig::from_args(&args.storage)?;
        let snapshots_dir = match (&args.snapshots_dir, file_dir) {
            (Some(s), Some(f)) if f != std::path::Path::new(s.trim()) => {
                return Err(ConfigError {
                    var: "HELDAR_STORAGE_URL",
                    value: format!("file:{}", f.display()),
                    allowed: format!(
                        "the same folder as HELDAR_SNAPSHOTS_DIR ({s}), or set only one of them"
                    ),
                })
            }
            (_, Some(f)) => f,
            (Some(s), None) => PathBuf::from(non_empty("HELDAR_SNAPSHOTS_DIR", s)?),
            (None, None) => data_dir.join("snapshots"),
        };
        let database_url = match &args.database_url {
            Some(s) => {
                let s = non_empty("HELDAR_DATABASE_URL", s)?;
                database_url_problem(s).map_or(Ok(()), |allowed| {
                    Err(ConfigError {
                        var: "HELDAR_DATABASE_URL",
                        // A database URL may carry a password: never echoed.
                        value: crate::camera::mask::mask_url(s),
                        allowed: allowed.into(),
                    })
                })?;
                s.to_string()
            }
            None => format!("sqlite://{}", data_dir.join("heldar.db").display()),
        };
        let api_host = parse_host(&args.api_host)?;
        let api_port = parse_num::<u16>(
            "HELDAR_API_PORT",
            &args.api_port,
            "a port number from 0 to 65535",
        )?;
        let db_outage_buffer = parse_num::<usize>(
            "HELDAR_DB_OUTAGE_BUFFER",
            &args.db_outage_buffer,
            "a whole number of writes (0 holds none: slots are missed as soon as the database \
             is unavailable)",
        )?;
        let db_outage_max_s = parse_num::<u64>(
            "HELDAR_DB_OUTAGE_MAX_S",
            &args.db_outage_max_s,
            "a whole number of seconds",
        )?;
        let scheduler_enabled = parse_bool(
            "HELDAR_SNAPSHOT_SCHEDULER_ENABLED",
            &args.snapshot_scheduler_enabled,
        )?;
        let scheduler_interval_s = clamp_min(
            "HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S",
            parse_num::<u64>(
                "HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S",
                &args.snapshot_scheduler_interval_s,
                "a whole number of seconds (at least 5)",
            )?,
            5,
            &mut warnings,
        );
        let camera_cache_ttl_s = clamp_min(
            "HELDAR_CAMERA_CACHE_TTL_S",
            parse_num::<u64>(
                "HELDAR_CAMERA_CACHE_TTL_S",
                &args.camera_cache_ttl_s,
                "a whole number of seconds (at least 1)",
            )?,
            1,
            &mut warnings,
        );
        let retention_hours = parse_num::<u64>(
            "HELDAR_SNAPSHOT_RETENTION_HOURS",
            &args.snapshot_retention_hours,
            "a whole number of hours (0 keeps frames forever)",
        )?;
        let retention_interval_s = clamp_min(
            "HELDAR_RETENTION_INTERVAL_S",
            parse_num::<u64>(
                "HELDAR_RETENTION_INTERVAL_S",
                &args.retention_interval_s,
                "a whole number of seconds (at least 1)",
            )?,
            1,
            &mut warnings,
        );
        let max_gb = parse_gb("HELDAR_SNAPSHOT_MAX_GB", &args.snapshot_max_gb)?;
        let min_free_gb = parse_gb("HELDAR_MIN_FREE_DISK_GB", &args.min_free_disk_gb)?;
        let capture_timeout_s = clamp_min(
            "HELDAR_CAPTURE_TIMEOUT_S",
            parse_num::<u64>(
                "HELDAR_CAPTURE_TIMEOUT_S",
                &args.capture_timeout_s,
                "a whole number of seconds (at least 1)",
            )?,
            1,
            &mut warnings,
        );
        let capture_concurrency = if args.capture_concurrency.trim() == "auto" {
            auto_capture_concurrency()
        } else {
            clamp_min(
                "HELDAR_CAPTURE_CONCURRENCY",
                parse_num::<usize>(
                    "HELDAR_CAPTURE_CONCURRENCY",
                    &args.capture_concurrency,
                    "auto or a whole number (at least 1)",
                )?,
                1,
                &mut warnings,
            )
        };
        let ffmpeg_concurrency = clamp_min(
            "HELDAR_FFMPEG_CONCURRENCY",
            parse_num::<usize>(
                "HELDAR_FFMPEG_CONCURRENCY",
                &args.ffmpeg_concurrency,
                "a whole number (at least 1)",
            )?,
            1,
            &mut warnings,
        );
        let capture_max_bytes = clamp_min(
            "HELDAR_CAPTURE_MAX_BYTES",
            parse_num::<usize>(
                "HELDAR_CAPTURE_MAX_BYTES",
                &args.capture_max_bytes,
                "a whole number of bytes (at least 1024)",
            )?,
            1024,
            &mut warnings,
        );
        let api_token = match &args.api_token {
            None => None,
            Some(t) if t.trim().is_empty() => None,
            Some(t) if t.len() < 16 => {
                return Err(ConfigError {
                    var: "HELDAR_API_TOKEN",
                    value: "(hidden)".into(),
                    allowed: "a token of at least 16 characters".into(),
                })
            }
            Some(t) => Some(t.clone()),
        };
        if !api_host.is_loopback() && api_token.is_none() {
            return Err(ConfigError {
                var: "HELDAR_API_HOST",
                value: args.api_host.clone(),
                allowed: "listening on a non-loopback address needs an API token: set \
                          HELDAR_API_TOKEN to a secret of at least 16 characters \
                          (e.g. `export HELDAR_API_TOKEN=$(openssl rand -hex 32)`), \
                          or keep HELDAR_API_HOST=127.0.0.1"
                    .into(),
            });
        }
        let secret_key_file = match &args.secret_key_file {
            Some(s) => PathBuf::from(non_empty("HELDAR_SECRET_KEY_FILE", s)?),
            None => data_dir.join("secret.key"),
        };
        // tracing-subscriber's directive parser slices by byte and panics inside a multi-byte
        // character (`ß [`, found by the config_values fuzz target): a filter is module paths,
        // levels and field names, so anything but ASCII is refused before it gets there.
        if !args.log.is_ascii() {
            return Err(ConfigError {
                var: "HELDAR_LOG",
                value: args.log.clone(),
                allowed: "a tracing filter such as `info` or `heldar=debug,info`, in ASCII".into(),
            });
        }
        tracing_subscriber::EnvFilter::try_new(&args.log).map_err(|e| ConfigError {
            var: "HELDAR_LOG",
            value: args.log.clone(),
            allowed: format!("a tracing filter such as `info` or `heldar=debug,info` ({e})"),
        })?;

        let http_max_connections = match args.http_max_connections.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(clamp_min(
                "HELDAR_HTTP_MAX_CONNECTIONS",
                parse_num::<usize>(
                    "HELDAR_HTTP_MAX_CONNECTIONS",
                    v,
                    "a whole number of connections (at least 1), or unset for a default sized \
                     from the file-descriptor limit",
                )?,
                1,
                &mut warnings,
            )),
        };

        let metrics_auth = match args.metrics_auth.trim().to_ascii_lowercase().as_str() {
            "token" => MetricsAuth::Token,
            "none" => MetricsAuth::None,
            _ => {
                return Err(ConfigError {
                    var: "HELDAR_METRICS_AUTH",
                    value: args.metrics_auth.clone(),
                    allowed: "`token` (a viewer token while authentication is on, the default) \
                              or `none` (anyone who can reach the server may read /metrics)"
                        .into(),
                })
            }
        };
        let backoff_max_s = parse_num::<u64>(
            "HELDAR_UNREACHABLE_BACKOFF_MAX_S",
            &args.unreachable_backoff_max_s,
            "a whole number of seconds (0 turns the backoff off)",
        )?;
        let backoff_max_s = if backoff_max_s > 86_400 {
            warnings.push(format!(
                "HELDAR_UNREACHABLE_BACKOFF_MAX_S={backoff_max_s} is above the maximum; using 86400"
            ));
            86_400
        } else {
            backoff_max_s
        };

        let num = |var: &'static str, v: &str, allowed: &str, min: u64, w: &mut Vec<String>| {
            parse_num::<u64>(var, v, allowed).map(|n| clamp_min(var, n, min, w))
        };
        let rtsp = RtspConfig {
            warm_max_interval: Duration::from_secs(num(
                "HELDAR_RTSP_WARM_MAX_INTERVAL_S",
                &args.rtsp_warm_max_interval_s,
                "a whole number of seconds (0 keeps no session warm)",
                0,
                &mut warnings,
            )?),
            warm_max_sessions: num(
                "HELDAR_RTSP_WARM_MAX_SESSIONS",
                &args.rtsp_warm_max_sessions,
                "a whole number of sessions",
                0,
                &mut warnings,
            )? as usize,
            decode_concurrency: if args.rtsp_decode_concurrency.trim() == "auto" {
                std::thread::available_parallelism().map_or(2, |n| n.get())
            } else {
                num(
                    "HELDAR_RTSP_DECODE_CONCURRENCY",
                    &args.rtsp_decode_concurrency,
                    "auto or a whole number (at least 1)",
                    1,
                    &mut warnings,
                )? as usize
            },
            gop_max_bytes: num(
                "HELDAR_RTSP_GOP_MAX_BYTES",
                &args.rtsp_gop_max_bytes,
                "a whole number of bytes (at least 65536)",
                65_536,
                &mut warnings,
            )? as usize,
            gop_max_age: Duration::from_secs(num(
                "HELDAR_RTSP_GOP_MAX_AGE_S",
                &args.rtsp_gop_max_age_s,
                "a whole number of seconds (at least 1)",
                1,
                &mut warnings,
            )?),
            stall: Duration::from_secs(num(
                "HELDAR_RTSP_STALL_S",
                &args.rtsp_stall_s,
                "a whole number of seconds (at least 1)",
                1,
                &mut warnings,
            )?),
        };
        let timelapse_concurrency = clamp_min(
            "HELDAR_TIMELAPSE_CONCURRENCY",
            parse_num::<usize>(
                "HELDAR_TIMELAPSE_CONCURRENCY",
                &args.timelapse_concurrency,
                "a whole number of encodings at once (at least 1)",
            )?,
            1,
            &mut warnings,
        );
        let timelapse_max_frames = clamp_min(
            "HELDAR_TIMELAPSE_MAX_FRAMES",
            parse_num::<u64>(
                "HELDAR_TIMELAPSE_MAX_FRAMES",
                &args.timelapse_max_frames,
                "a whole number of frames (at least 1)",
            )?,
            1,
            &mut warnings,
        );
        let timelapse_ttl_hours = parse_num::<u64>(
            "HELDAR_TIMELAPSE_TTL_HOURS",
            &args.timelapse_ttl_hours,
            "a whole number of hours (0 keeps videos forever)",
        )?;

        let offline_after_failures = num(
            "HELDAR_OFFLINE_AFTER_FAILURES",
            &args.offline_after_failures,
            "a whole number of failures (0: never offline by count)",
            0,
            &mut warnings,
        )?
        .min(u64::from(u32::MAX)) as u32;
        let offline_after = match args.offline_after_s.trim() {
            "auto" => OfflineAfter::Auto,
            v => match parse_num::<u64>(
                "HELDAR_OFFLINE_AFTER_S",
                v,
                "auto (3 × the shortest schedule interval, at least 60 s) or a whole number of \
                 seconds (0: never offline by time)",
            )? {
                0 => OfflineAfter::Off,
                n => OfflineAfter::Fixed(Duration::from_secs(n)),
            },
        };
        let webhooks = WebhookConfig {
            timeout: Duration::from_secs(num(
                "HELDAR_WEBHOOK_TIMEOUT_S",
                &args.webhook_timeout_s,
                "a whole number of seconds (at least 1)",
                1,
                &mut warnings,
            )?),
            max_attempts: num(
                "HELDAR_WEBHOOK_MAX_ATTEMPTS",
                &args.webhook_max_attempts,
                "a whole number of attempts (at least 1)",
                1,
                &mut warnings,
            )?
            .min(100) as u32,
            retry_initial: Duration::from_millis(num(
                "HELDAR_WEBHOOK_RETRY_INITIAL_MS",
                &args.webhook_retry_initial_ms,
                "a whole number of milliseconds (at least 10)",
                10,
                &mut warnings,
            )?),
            retry_max: Duration::from_secs(num(
                "HELDAR_WEBHOOK_RETRY_MAX_S",
                &args.webhook_retry_max_s,
                "a whole number of seconds (at least 1)",
                1,
                &mut warnings,
            )?),
            queue: num(
                "HELDAR_WEBHOOK_QUEUE",
                &args.webhook_queue,
                "a whole number of events (at least 1)",
                1,
                &mut warnings,
            )? as usize,
        };

        let node = NodeConfig::from_args(args.node_id.as_deref(), &args.lease_period_s)?;
        let config = Config {
            node,
            offline_after_failures,
            offline_after,
            webhooks,
            timelapses_dir: data_dir.join("timelapses"),
            timelapse_concurrency,
            timelapse_max_frames,
            timelapse_ttl: (timelapse_ttl_hours > 0)
                .then(|| Duration::from_secs(timelapse_ttl_hours.saturating_mul(3600))),
            data_dir,
            snapshots_dir,
            database_url,
            db_outage: crate::db::writer::Buffer {
                max_writes: db_outage_buffer,
                max_age: Duration::from_secs(db_outage_max_s),
            },
            api_host,
            api_port,
            ffmpeg_bin: PathBuf::from(non_empty("HELDAR_FFMPEG_BIN", &args.ffmpeg_bin)?),
            scheduler_enabled,
            scheduler_interval: Duration::from_secs(scheduler_interval_s),
            camera_cache_ttl: Duration::from_secs(camera_cache_ttl_s),
            retention_age: (retention_hours > 0)
                .then(|| Duration::from_secs(retention_hours.saturating_mul(3600))),
            retention_interval: Duration::from_secs(retention_interval_s),
            snapshot_max_bytes: (max_gb > 0.0).then_some((max_gb * GB) as u64),
            min_free_disk_bytes: (min_free_gb * GB) as u64,
            capture_timeout: Duration::from_secs(capture_timeout_s),
            capture_concurrency,
            ffmpeg_concurrency,
            capture_max_bytes,
            snapshot_fsync: parse_bool("HELDAR_SNAPSHOT_FSYNC", &args.snapshot_fsync)?,
            api_token,
            secret_key_file,
            log: args.log.clone(),
            http_max_connections,
            allow_metadata_hosts: parse_bool(
                "HELDAR_ALLOW_METADATA_HOSTS",
                &args.allow_metadata_hosts,
            )?,
            metrics_auth,
            unreachable_backoff_max: (backoff_max_s > 0)
                .then(|| Duration::from_secs(backoff_max_s)),
            rtsp,
            mqtt: MqttConfig::from_args(&args.mqtt)?,
            storage,
        };
        Ok((config, warnings))
    }

    /// HTTP connections to serve at once: the setting, or a default sized from the current
    /// file-descriptor limit.
    pub fn http_connection_limit(&self) -> usize {
        self.http_max_connections.unwrap_or_else(|| {
            crate::fd_limit::default_http_connections(
                crate::fd_limit::current_soft(),
                self.capture_concurrency,
                self.ffmpeg_concurrency,
            )
        })
    }

    /// The defaults of every setting with all data under `data_dir`: what tests and the bench
    /// start from. It reads no environment.
    pub fn defaults_in(data_dir: impl Into<PathBuf>) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ServeArgs,
        }
        // `ServeArgs` reads HELDAR_* variables; build from the declared defaults only.
        let mut cmd = <Defaults as clap::CommandFactory>::command();
        cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(["heldar"]);
        let mut args = <Defaults as clap::FromArgMatches>::from_arg_matches(&matches)
            .expect("the declared defaults parse")
            .args;
        args.data_dir = data_dir.into().display().to_string();
        Config::from_args(&args)
            .expect("the declared defaults are valid")
            .0
    }

    /// Create the data and snapshot directories and check they can be written, naming the
    /// variable when they cannot; then create (or tighten) the database file owner-only.
    ///
    /// Folders Heldar creates are 0700; an existing folder is left as it is, with a WARN if it
    /// is the data dir and other users can read or enter it (see `private_files`).
    pub fn prepare_dirs(&self) -> Result<(), ConfigError> {
        // (setting, folder, what the folder is of the setting's: `None` for the setting's own
        // folder). The timelapse videos live in a folder under the data dir, which is named as
        // such, not as the data dir itself.
        for (var, dir, part) in [
            ("HELDAR_DATA_DIR", &self.data_dir, None),
            ("HELDAR_SNAPSHOTS_DIR", &self.snapshots_dir, None),
            (
                "HELDAR_DATA_DIR",
                &self.timelapses_dir,
                Some("its timelapses folder"),
            ),
        ] {
            let fail = |e: std::io::Error| match part {
                None => ConfigError {
                    var,
                    value: dir.display().to_string(),
                    allowed: format!("a directory Heldar can create and write ({e})"),
                },
                Some(part) => ConfigError {
                    var,
                    value: self.data_dir.display().to_string(),
                    allowed: format!(
                        "{part} {} must be a directory Heldar can create and write ({e})",
                        dir.display()
                    ),
                },
            };
            let origin = crate::private_files::ensure_dir(dir).map_err(fail)?;
            match origin {
                crate::private_files::DirOrigin::Existing { mode }
                    if dir == &self.data_dir && mode & 0o007 != 0 =>
                {
                    tracing::warn!(
                        dir = %dir.display(),
                        mode = format!("{mode:o}"),
                        "the data directory (HELDAR_DATA_DIR) can be read by other users; \
                         Heldar does not change the mode of a directory it did not create: \
                         `chmod 700 {}` to make it private",
                        dir.display()
                    );
                }
                crate::private_files::DirOrigin::Created => match part {
                    None => tracing::info!(dir = %dir.display(), "created {var} (mode 700)"),
                    Some(part) => {
                        tracing::info!(dir = %dir.display(), "created {var}'s {} (mode 700)", part.trim_start_matches("its "))
                    }
                },
                _ => {}
            }
            let probe = dir.join(".heldar-write-probe");
            std::fs::write(&probe, b"ok").map_err(fail)?;
            let _ = std::fs::remove_file(&probe);
        }
        if let Ok(db) = crate::db::file_of(&self.database_url) {
            let tightened =
                crate::private_files::secure_database(&db).map_err(|e| ConfigError {
                    var: "HELDAR_DATABASE_URL",
                    value: crate::camera::mask::mask_url(&self.database_url),
                    allowed: format!("a database file Heldar can create and own ({e})"),
                })?;
            for f in tightened {
                tracing::info!(file = %f.display(), "database file was readable by other users; now mode 600");
            }
        }
        Ok(())
    }
}

/// What is wrong with a `HELDAR_DATABASE_URL`, as the "allowed" half of its error; `None` when
/// it can be used.
fn database_url_problem(url: &str) -> Option<&'static str> {
    match crate::db::Backend::of_url(url) {
        None => Some(
            "a sqlite: URL (e.g. sqlite://./data/heldar.db) or a postgres:// URL \
             (e.g. postgres://heldar:PASSWORD@db.example:5432/heldar)",
        ),
        Some(crate::db::Backend::Postgres) => {
            // Checked here, not at the first connection: a typo stops start-up with the
            // setting named.
            let parsed = url::Url::parse(url).ok();
            let host = parsed.as_ref().and_then(|u| u.host_str()).unwrap_or("");
            let db = parsed.as_ref().map(|u| u.path().trim_start_matches('/'));
            // The usual cause is a password with @ / # ? in it, which ends the user part, the
            // host or the path early: say how to write one.
            (host.is_empty() || db.is_none_or(str::is_empty)).then_some(
                "a postgres:// URL with a host and a database name, e.g. \
                 postgres://heldar:PASSWORD@db.example:5432/heldar (percent-encode @ : / # ? \
                 in the user name or password, e.g. %40)",
            )
        }
        // The capture writer opens its own connection (db::writer); each connection to an
        // in-memory database would be a different, empty database.
        Some(crate::db::Backend::Sqlite) => crate::db::is_in_memory(url).then_some(
            "an in-memory database is not supported; name a file, e.g. \
             sqlite://./data/heldar.db",
        ),
    }
}

fn non_empty<'a>(var: &'static str, value: &'a str) -> Result<&'a str, ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError {
            var,
            value: value.to_string(),
            allowed: "a non-empty value".into(),
        })
    } else {
        Ok(value.trim())
    }
}

/// `HELDAR_CAPTURE_CONCURRENCY=auto`: a quarter of the open-file soft limit, between 64 and
/// 4,096. An HTTP capture waiting on a camera costs one socket and a small task, so the limit is
/// a file-descriptor budget, not a CPU one (ffmpeg keeps its own limit); the other three
/// quarters are left for the database, frame files, API clients and the rest.
pub fn auto_capture_concurrency() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    (soft / 4).clamp(64, 4096) as usize
}

/// Where the client commands find this machine's Heldar when no `--url`/HELDAR_URL is given.
pub struct LocalClient {
    /// `http://HELDAR_API_HOST:HELDAR_API_PORT`; a wildcard host (`0.0.0.0`, `::`) is reached on
    /// loopback; unreadable or unset values fall back to `127.0.0.1` and `8000`.
    pub url: String,
    /// HELDAR_API_TOKEN, the bootstrap admin token this machine's Heldar accepts.
    pub token: Option<String>,
}

/// The local settings the client commands default to (the environment and `.env`, as
/// `heldar serve` reads them). Never fails: a broken value means the default.
pub fn local_client_defaults() -> LocalClient {
    local_client_from(|k| std::env::var(k).ok())
}

/// [`local_client_defaults`] from any source of variables.
pub fn local_client_from(lookup: impl Fn(&str) -> Option<String>) -> LocalClient {
    let var = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    let host = var("HELDAR_API_HOST")
        .and_then(|h| parse_host(&h).ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let host = match host {
        h if h.is_unspecified() && h.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        h if h.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        h => h,
    };
    let port = var("HELDAR_API_PORT")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p != 0)
        .unwrap_or(8000);
    LocalClient {
        url: format!("http://{}", std::net::SocketAddr::new(host, port)),
        token: var("HELDAR_API_TOKEN"),
    }
}

fn parse_num<T: std::str::FromStr>(
    var: &'static str,
    value: &str,
    allowed: &str,
) -> Result<T, ConfigError> {
    value.trim().parse::<T>().map_err(|_| ConfigError {
        var,
        value: value.to_string(),
        allowed: allowed.to_string(),
    })
}

fn parse_gb(var: &'static str, value: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(ConfigError {
            var,
            value: value.to_string(),
            allowed: "a number of gigabytes, 0 or more (e.g. 0.5 or 20)".into(),
        }),
    }
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            value: value.to_string(),
            allowed: "true or false (also 1/0, yes/no, on/off)".into(),
        }),
    }
}

fn parse_host(value: &str) -> Result<IpAddr, ConfigError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| ConfigError {
            var: "HELDAR_API_HOST",
            value: value.to_string(),
            allowed: "an IP address such as 127.0.0.1, 0.0.0.0 or ::1, or `localhost`".into(),
        })
}

fn clamp_min<T: PartialOrd + Copy + std::fmt::Display>(
    var: &'static str,
    value: T,
    min: T,
    warnings: &mut Vec<String>,
) -> T {
    if value < min {
        warnings.push(format!("{var}={value} is below the minimum; using {min}"));
        min
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[(&str, &str)]) -> ServeArgs {
        let mut a = ServeArgs {
            data_dir: "/tmp/x".into(),
            snapshots_dir: None,
            database_url: None,
            db_outage_buffer: "10000".into(),
            db_outage_max_s: "60".into(),
            api_host: "127.0.0.1".into(),
            api_port: "8000".into(),
            ffmpeg_bin: "ffmpeg".into(),
            snapshot_scheduler_enabled: "true".into(),
            snapshot_scheduler_interval_s: "60".into(),
            camera_cache_ttl_s: "30".into(),
            snapshot_retention_hours: "168".into(),
            retention_interval_s: "300".into(),
            snapshot_max_gb: "0".into(),
            min_free_disk_gb: "1".into(),
            capture_timeout_s: "20".into(),
            capture_concurrency: "auto".into(),
            ffmpeg_concurrency: "16".into(),
            capture_max_bytes: "20971520".into(),
            snapshot_fsync: "true".into(),
            api_token: None,
            secret_key_file: None,
            log: "info".into(),
            http_max_connections: None,
            allow_metadata_hosts: "false".into(),
            metrics_auth: "token".into(),
            unreachable_backoff_max_s: "300".into(),
            rtsp_warm_max_interval_s: "60".into(),
            rtsp_warm_max_sessions: "256".into(),
            rtsp_decode_concurrency: "auto".into(),
            rtsp_gop_max_bytes: "16777216".into(),
            rtsp_gop_max_age_s: "30".into(),
            rtsp_stall_s: "10".into(),
            timelapse_concurrency: "1".into(),
            timelapse_max_frames: "100000".into(),
            timelapse_ttl_hours: "720".into(),
            mqtt: MqttArgs {
                mqtt_prefix: "heldar".into(),
                mqtt_discovery_prefix: "homeassistant".into(),
                ..MqttArgs::default()
            },
            offline_after_failures: "3".into(),
            offline_after_s: "auto".into(),
            webhook_timeout_s: "10".into(),
            webhook_max_attempts: "6".into(),
            webhook_retry_initial_ms: "1000".into(),
            webhook_retry_max_s: "300".into(),
            webhook_queue: "1000".into(),
            node_id: None,
            lease_period_s: "15".into(),
            storage: StorageArgs {
                s3_presign_seconds: "0".into(),
                ..StorageArgs::default()
            },
        };
        for (k, v) in extra {
            match *k {
                "port" => a.api_port = v.to_string(),
                "host" => a.api_host = v.to_string(),
                "sched" => a.snapshot_scheduler_enabled = v.to_string(),
                "interval" => a.snapshot_scheduler_interval_s = v.to_string(),
                "max_gb" => a.snapshot_max_gb = v.to_string(),
                "token" => a.api_token = Some(v.to_string()),
                "log" => a.log = v.to_string(),
                "retention" => a.snapshot_retention_hours = v.to_string(),
                "db" => a.database_url = Some(v.to_string()),
                "http_max" => a.http_max_connections = Some(v.to_string()),
                "metrics_auth" => a.metrics_auth = v.to_string(),
                "backoff_max" => a.unreachable_backoff_max_s = v.to_string(),
                "lease" => a.lease_period_s = v.to_string(),
                "node_id" => a.node_id = Some(v.to_string()),
                _ => unreachable!(),
            }
        }
        a
    }

    #[test]
    fn a_postgres_url_with_an_unencoded_password_says_how_to_encode_it() {
        for bad in [
            "postgres://heldar:pa/ss@db.example:5432/heldar",
            "postgres://heldar:pa#ss@db.example:5432/heldar",
            "postgres://heldar:pa?ss@db.example:5432/heldar",
        ] {
            let e = Config::from_args(&args(&[("db", bad)])).unwrap_err();
            assert_eq!(e.var, "HELDAR_DATABASE_URL", "{bad}");
            let text = e.to_string();
            assert!(
                text.contains("percent-encode @ : / # ? in the user name or password, e.g. %40"),
                "{text}"
            );
            for secret in ["pa/ss", "pa#ss", "pa?ss"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
        // Encoded, it is accepted.
        let (c, _) = Config::from_args(&args(&[(
            "db",
            "postgres://heldar:p%40ss%2Fword@db.example:5432/heldar",
        )]))
        .unwrap();
        assert!(c.database_url.contains("%40"));
    }

    #[test]
    fn lease_period_and_node_id_are_checked_with_a_sentence() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.node.lease_period, Duration::from_secs(15));
        assert!(c.node.id.ends_with(&format!("-{}", std::process::id())));
        let (c, _) = Config::from_args(&args(&[("lease", "3"), ("node_id", "edge-1")])).unwrap();
        assert_eq!(c.node.lease_period, Duration::from_secs(3));
        assert_eq!(c.node.id, "edge-1");
        for bad in ["2", "301", "0", "-5", "15s", "", "1e3"] {
            let e = Config::from_args(&args(&[("lease", bad)])).unwrap_err();
            assert_eq!(e.var, "HELDAR_LEASE_PERIOD_S");
            assert!(e.to_string().contains("from 3 to 300"), "{e}");
        }
        let long = "x".repeat(65);
        for bad in ["has space", "a/b", long.as_str()] {
            let e = Config::from_args(&args(&[("node_id", bad)])).unwrap_err();
            assert_eq!(e.var, "HELDAR_NODE_ID", "{bad}");
        }
    }

    #[test]
    fn offline_and_webhook_settings_parse_and_name_their_variable() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.offline_after_failures, 3);
        assert_eq!(c.offline_after, OfflineAfter::Auto);
        assert_eq!(
            c.webhooks,
            WebhookConfig {
                timeout: Duration::from_secs(10),
                max_attempts: 6,
                retry_initial: Duration::from_millis(1000),
                retry_max: Duration::from_secs(300),
                queue: 1000,
            }
        );
        let with = |f: &dyn Fn(&mut ServeArgs)| {
            let mut a = args(&[]);
            f(&mut a);
            Config::from_args(&a)
        };
        let c = with(&|a| a.offline_after_s = "0".into()).unwrap().0;
        assert_eq!(c.offline_after, OfflineAfter::Off);
        let c = with(&|a| a.offline_after_s = "90".into()).unwrap().0;
        assert_eq!(
            c.offline_after,
            OfflineAfter::Fixed(Duration::from_secs(90))
        );
        let e = with(&|a| a.offline_after_s = "soon".into()).unwrap_err();
        assert_eq!(e.var, "HELDAR_OFFLINE_AFTER_S");
        let e = with(&|a| a.webhook_max_attempts = "many".into()).unwrap_err();
        assert_eq!(e.var, "HELDAR_WEBHOOK_MAX_ATTEMPTS");
        let (c, warnings) = with(&|a| a.webhook_max_attempts = "0".into()).unwrap();
        assert_eq!(c.webhooks.max_attempts, 1);
        assert!(warnings
            .iter()
            .any(|w| w.contains("HELDAR_WEBHOOK_MAX_ATTEMPTS")));
    }

    #[test]
    fn defaults_follow_the_design_table() {
        let c = Config::defaults_in("/tmp/heldar-x");
        assert_eq!(c.api_port, 8000);
        assert_eq!(c.api_host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.snapshots_dir, PathBuf::from("/tmp/heldar-x/snapshots"));
        assert_eq!(c.database_url, "sqlite:///tmp/heldar-x/heldar.db");
        assert_eq!(c.scheduler_interval, Duration::from_secs(60));
        assert_eq!(c.retention_age, Some(Duration::from_secs(168 * 3600)));
        assert_eq!(c.snapshot_max_bytes, None);
        assert_eq!(c.min_free_disk_bytes, 1_000_000_000);
        assert_eq!(c.capture_timeout, Duration::from_secs(20));
        assert_eq!(c.capture_concurrency, auto_capture_concurrency());
        assert!((64..=4096).contains(&c.capture_concurrency));
        assert_eq!(c.ffmpeg_concurrency, 16);
        assert_eq!(c.capture_max_bytes, 20 * 1024 * 1024);
        assert_eq!(c.secret_key_file, PathBuf::from("/tmp/heldar-x/secret.key"));
        assert!(c.scheduler_enabled);
    }

    #[test]
    fn bad_values_name_the_variable_the_value_and_what_is_allowed() {
        let cases = [
            (("port", "eighty"), "HELDAR_API_PORT=\"eighty\""),
            (("port", "70000"), "HELDAR_API_PORT=\"70000\""),
            (
                ("sched", "maybe"),
                "HELDAR_SNAPSHOT_SCHEDULER_ENABLED=\"maybe\"",
            ),
            (
                ("interval", "-3"),
                "HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S=\"-3\"",
            ),
            (("max_gb", "lots"), "HELDAR_SNAPSHOT_MAX_GB=\"lots\""),
            (("host", "not a host"), "HELDAR_API_HOST=\"not a host\""),
            (("log", "heldar=verbose=x"), "HELDAR_LOG="),
            (("log", "ß ["), "HELDAR_LOG="),
            (
                ("retention", "1.5"),
                "HELDAR_SNAPSHOT_RETENTION_HOURS=\"1.5\"",
            ),
            (
                ("db", "mysql://u@x/heldar"),
                "HELDAR_DATABASE_URL=\"mysql://u@x/heldar\"",
            ),
            (
                ("db", "postgres://x"),
                "HELDAR_DATABASE_URL=\"postgres://x\"",
            ),
            (
                ("db", "sqlite::memory:"),
                "HELDAR_DATABASE_URL=\"sqlite::memory:\"",
            ),
            (
                ("db", "sqlite://x.db?mode=memory"),
                "HELDAR_DATABASE_URL=\"sqlite://x.db?mode=memory\"",
            ),
            (("metrics_auth", "open"), "HELDAR_METRICS_AUTH=\"open\""),
            (
                ("backoff_max", "5m"),
                "HELDAR_UNREACHABLE_BACKOFF_MAX_S=\"5m\"",
            ),
        ];
        for ((k, v), want) in cases {
            let err = Config::from_args(&args(&[(k, v)])).unwrap_err();
            let line = err.to_string();
            assert!(line.starts_with(want), "{line}");
            assert!(line.contains("cannot be used: "), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
        }
    }

    #[test]
    fn out_of_range_numbers_are_clamped_with_a_warning() {
        let (c, warnings) = Config::from_args(&args(&[("interval", "1")])).unwrap();
        assert_eq!(c.scheduler_interval, Duration::from_secs(5));
        assert_eq!(
            warnings,
            vec!["HELDAR_SNAPSHOT_SCHEDULER_INTERVAL_S=1 is below the minimum; using 5"]
        );
    }

    /// PostgreSQL is the second back-end: its URL is kept as given; a refused database URL,
    /// of either kind, never echoes its password.
    #[test]
    fn postgres_urls_are_accepted_and_refused_ones_never_show_their_password() {
        for url in [
            "postgres://heldar:hunter2@db.example:5432/heldar",
            "postgresql://heldar@127.0.0.1/fleet?sslmode=require",
        ] {
            let (c, _) = Config::from_args(&args(&[("db", url)])).unwrap();
            assert_eq!(c.database_url, url);
        }
        for bad in [
            "postgres://heldar:hunter2@db.example:5432",
            "postgres://heldar:hunter2@/heldar",
            "mysql://heldar:hunter2@db.example/heldar",
        ] {
            let err = Config::from_args(&args(&[("db", bad)])).unwrap_err();
            let line = err.to_string();
            assert!(line.starts_with("HELDAR_DATABASE_URL="), "{line}");
            assert!(!line.contains("hunter2"), "the password is echoed: {line}");
        }
    }

    #[test]
    fn non_loopback_without_token_refuses_and_says_how_to_fix_it() {
        let err = Config::from_args(&args(&[("host", "0.0.0.0")])).unwrap_err();
        assert!(err.to_string().contains("HELDAR_API_TOKEN"), "{err}");
        let ok = Config::from_args(&args(&[
            ("host", "0.0.0.0"),
            ("token", "0123456789abcdef0123"),
        ]));
        assert!(ok.is_ok());
        // The token itself is never echoed in an error.
        let err = Config::from_args(&args(&[("token", "short-secret")])).unwrap_err();
        assert!(!err.to_string().contains("short-secret"));
    }

    #[test]
    fn http_connection_limit_is_a_number_or_sized_from_the_fd_limit() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.http_max_connections, None);
        assert!(c.http_connection_limit() >= 16);
        let (c, _) = Config::from_args(&args(&[("http_max", " 300 ")])).unwrap();
        assert_eq!(c.http_connection_limit(), 300);
        let (c, w) = Config::from_args(&args(&[("http_max", "0")])).unwrap();
        assert_eq!(c.http_max_connections, Some(1));
        assert_eq!(w.len(), 1, "{w:?}");
        let err = Config::from_args(&args(&[("http_max", "lots")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HELDAR_HTTP_MAX_CONNECTIONS=\"lots\""),
            "{err}"
        );
    }

    #[test]
    fn metrics_auth_is_token_unless_set_to_none() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.metrics_auth, MetricsAuth::Token);
        let (c, _) = Config::from_args(&args(&[("metrics_auth", " None ")])).unwrap();
        assert_eq!(c.metrics_auth, MetricsAuth::None);
        let e = Config::from_args(&args(&[("metrics_auth", "off")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`token`") && e.contains("`none`"), "{e}");
    }

    #[test]
    fn the_unreachable_backoff_cap_is_seconds_and_zero_turns_it_off() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.unreachable_backoff_max, Some(Duration::from_secs(300)));
        let (c, _) = Config::from_args(&args(&[("backoff_max", "0")])).unwrap();
        assert_eq!(c.unreachable_backoff_max, None);
        let (c, w) = Config::from_args(&args(&[("backoff_max", "999999")])).unwrap();
        assert_eq!(c.unreachable_backoff_max, Some(Duration::from_secs(86_400)));
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn timelapse_settings_have_defaults_clamps_and_zero_keeps_forever() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.timelapses_dir, PathBuf::from("/tmp/x/timelapses"));
        assert_eq!(c.timelapse_concurrency, 1);
        assert_eq!(c.timelapse_max_frames, 100_000);
        assert_eq!(c.timelapse_ttl, Some(Duration::from_secs(720 * 3600)));
        let mut a = args(&[]);
        a.timelapse_ttl_hours = "0".into();
        a.timelapse_concurrency = "0".into();
        let (c, w) = Config::from_args(&a).unwrap();
        assert_eq!(c.timelapse_ttl, None);
        assert_eq!(c.timelapse_concurrency, 1);
        assert_eq!(w.len(), 1, "{w:?}");
        a.timelapse_max_frames = "many".into();
        let e = Config::from_args(&a).unwrap_err().to_string();
        assert!(e.starts_with("HELDAR_TIMELAPSE_MAX_FRAMES=\"many\""), "{e}");
    }

    fn mqtt(f: impl FnOnce(&mut MqttArgs)) -> Result<Option<MqttConfig>, ConfigError> {
        let mut a = args(&[]).mqtt;
        f(&mut a);
        MqttConfig::from_args(&a)
    }

    #[test]
    fn mqtt_is_off_unless_a_url_is_set_and_has_defaults() {
        assert_eq!(Config::from_args(&args(&[])).unwrap().0.mqtt, None);
        assert_eq!(mqtt(|a| a.mqtt_url = Some(" ".into())).unwrap(), None);
        let c = mqtt(|a| a.mqtt_url = Some("mqtt://192.168.1.10".into()))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("192.168.1.10", 1883, false)
        );
        assert_eq!(c.prefix, "heldar");
        assert_eq!(c.discovery_prefix.as_deref(), Some("homeassistant"));
        assert!(c.client_id.starts_with("heldar-"), "{}", c.client_id);
        let c = mqtt(|a| {
            a.mqtt_url = Some("mqtts://broker.lan".into());
            a.mqtt_discovery_prefix = String::new();
            a.mqtt_prefix = "/home/heldar/".into();
        })
        .unwrap()
        .unwrap();
        assert_eq!((c.port, c.tls), (8883, true));
        assert_eq!(c.discovery_prefix, None, "empty turns discovery off");
        assert_eq!(c.prefix, "home/heldar");
        assert_eq!(c.broker(), "mqtts://broker.lan:8883");
    }

    #[test]
    fn mqtt_settings_that_cannot_work_are_refused_naming_the_variable() {
        type Edit = fn(&mut MqttArgs);
        let cases: [(&str, Edit); 6] = [
            ("HELDAR_MQTT_URL", |a| {
                a.mqtt_url = Some("http://broker".into())
            }),
            ("HELDAR_MQTT_URL", |a| {
                a.mqtt_url = Some("mqtt://broker/topic".into())
            }),
            ("HELDAR_MQTT_PREFIX", |a| {
                a.mqtt_url = Some("mqtt://b".into());
                a.mqtt_prefix = "heldar/#".into();
            }),
            ("HELDAR_MQTT_PREFIX", |a| {
                a.mqtt_url = Some("mqtt://b".into());
                a.mqtt_prefix = "a//b".into();
            }),
            ("HELDAR_MQTT_CA_FILE", |a| {
                a.mqtt_url = Some("mqtt://b".into());
                a.mqtt_ca_file = Some("/etc/ca.pem".into());
            }),
            ("HELDAR_MQTT_USERNAME", |a| {
                a.mqtt_url = Some("mqtt://b".into());
                a.mqtt_password = Some("pw".into());
            }),
        ];
        for (var, f) in cases {
            let e = mqtt(f).unwrap_err();
            assert_eq!(e.var, var, "{e}");
        }
    }

    #[test]
    fn an_mqtt_setting_without_the_broker_url_is_refused_naming_both() {
        type Edit = fn(&mut MqttArgs);
        let cases: [(&str, Edit); 6] = [
            ("HELDAR_MQTT_PREFIX", |a| {
                a.mqtt_prefix = "home/heldar".into()
            }),
            ("HELDAR_MQTT_PREFIX", |a| a.mqtt_prefix = "heldar/#".into()),
            ("HELDAR_MQTT_DISCOVERY_PREFIX", |a| {
                a.mqtt_discovery_prefix = "ha".into()
            }),
            ("HELDAR_MQTT_USERNAME", |a| {
                a.mqtt_username = Some("heldar".into())
            }),
            ("HELDAR_MQTT_PASSWORD", |a| {
                a.mqtt_password = Some("hunter2".into());
                a.mqtt_url = Some(" ".into());
            }),
            ("HELDAR_MQTT_CA_FILE", |a| {
                a.mqtt_ca_file = Some("/etc/ca.pem".into())
            }),
        ];
        for (var, f) in cases {
            let e = mqtt(f).unwrap_err();
            assert_eq!(e.var, var, "{e}");
            let text = e.to_string();
            assert!(
                text.contains("HELDAR_MQTT_URL is not") && text.contains(&format!("unset {var}")),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        // The defaults, and empty values, are no settings: MQTT is simply off.
        assert_eq!(mqtt(|_| {}).unwrap(), None);
        assert_eq!(
            mqtt(|a| a.mqtt_username = Some(String::new())).unwrap(),
            None
        );
    }

    #[test]
    fn the_mqtt_password_never_shows_in_errors_or_dumps() {
        let e = mqtt(|a| a.mqtt_url = Some("mqtt://u:hunter2@broker".into())).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("HELDAR_MQTT_PASSWORD"), "{e}");
        let c = mqtt(|a| {
            a.mqtt_url = Some("mqtt://broker".into());
            a.mqtt_username = Some("heldar".into());
            a.mqtt_password = Some("hunter2".into());
        })
        .unwrap()
        .unwrap();
        assert_eq!(c.password.as_deref(), Some("hunter2"));
        let mut config = Config::from_args(&args(&[])).unwrap().0;
        config.mqtt = Some(c);
        let dump = format!("{config:?}");
        assert!(!dump.contains("hunter2") && dump.contains("***"), "{dump}");
    }

    #[test]
    fn zero_retention_means_forever() {
        let (c, _) = Config::from_args(&args(&[("retention", "0")])).unwrap();
        assert_eq!(c.retention_age, None);
    }

    #[test]
    fn metadata_hosts_are_refused_unless_the_setting_allows_them() {
        let (c, _) = Config::from_args(&args(&[])).unwrap();
        assert!(!c.allow_metadata_hosts);
        let mut a = args(&[]);
        a.allow_metadata_hosts = "true".into();
        assert!(Config::from_args(&a).unwrap().0.allow_metadata_hosts);
        a.allow_metadata_hosts = "perhaps".into();
        let e = Config::from_args(&a).unwrap_err().to_string();
        assert!(e.starts_with("HELDAR_ALLOW_METADATA_HOSTS"), "{e}");
    }

    #[test]
    fn the_client_finds_this_machines_heldar_from_its_settings() {
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            local_client_from(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        let c = from(&[]);
        assert_eq!((c.url.as_str(), c.token), ("http://127.0.0.1:8000", None));
        let c = from(&[("HELDAR_API_HOST", "0.0.0.0"), ("HELDAR_API_PORT", "9000")]);
        assert_eq!(
            c.url, "http://127.0.0.1:9000",
            "a wildcard is reached on loopback"
        );
        assert_eq!(from(&[("HELDAR_API_HOST", "::")]).url, "http://[::1]:8000");
        assert_eq!(
            from(&[("HELDAR_API_HOST", "10.0.0.5")]).url,
            "http://10.0.0.5:8000"
        );
        let c = from(&[("HELDAR_API_PORT", "eighty"), ("HELDAR_API_TOKEN", "t0ken")]);
        assert_eq!(
            c.url, "http://127.0.0.1:8000",
            "an unreadable port means the default"
        );
        assert_eq!(c.token.as_deref(), Some("t0ken"));
    }

    fn storage(url: Option<&str>, creds: bool, presign: &str) -> StorageArgs {
        StorageArgs {
            storage_url: url.map(str::to_string),
            s3_presign_seconds: presign.into(),
            aws_endpoint_url: Some("http://127.0.0.1:9000/".into()),
            aws_region: None,
            aws_access_key_id: creds.then(|| "AKIA1".to_string()),
            aws_secret_access_key: creds.then(|| "very-secret".to_string()),
            aws_session_token: None,
        }
    }

    #[test]
    fn storage_urls_parse_and_bad_ones_name_the_variable_without_secrets() {
        let (c, dir) = StorageConfig::from_args(&storage(None, false, "0")).unwrap();
        assert_eq!((c, dir), (StorageConfig::Local, None));
        let (c, dir) = StorageConfig::from_args(&storage(Some("file:"), false, "0")).unwrap();
        assert_eq!((c, dir), (StorageConfig::Local, None));
        let (_, dir) =
            StorageConfig::from_args(&storage(Some("file:///srv/f"), false, "0")).unwrap();
        assert_eq!(dir, Some(PathBuf::from("/srv/f")));
        let (c, _) =
            StorageConfig::from_args(&storage(Some("s3://frames/site-a/heldar/"), true, "300"))
                .unwrap();
        let StorageConfig::S3(s3) = c else { panic!() };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
            ("frames", "site-a/heldar", "us-east-1")
        );
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.presign, Some(Duration::from_secs(300)));
        assert_eq!(s3.url(), "s3://frames/site-a/heldar");
        assert!(!format!("{s3:?}").contains("very-secret"));

        for (url, creds, presign, var, says) in [
            ("s3://", true, "0", "HELDAR_STORAGE_URL", "a bucket name"),
            ("gs://x/y", true, "0", "HELDAR_STORAGE_URL", "unknown kind"),
            (
                "s3://frames",
                false,
                "0",
                "HELDAR_STORAGE_URL",
                "needs credentials",
            ),
            (
                "s3://frames",
                true,
                "x",
                "HELDAR_S3_PRESIGN_SECONDS",
                "whole number",
            ),
            (
                "s3://frames",
                true,
                "604801",
                "HELDAR_S3_PRESIGN_SECONDS",
                "at most",
            ),
            (
                "file:rel/path",
                true,
                "0",
                "HELDAR_STORAGE_URL",
                "absolute path",
            ),
        ] {
            let e = StorageConfig::from_args(&storage(Some(url), creds, presign)).unwrap_err();
            assert_eq!(e.var, var, "{url}");
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
        let e = StorageConfig::from_args(&storage(Some("s3://k:very-secret@frames"), true, "0"))
            .unwrap_err();
        assert!(!e.to_string().contains("very-secret"), "{e}");
        let mut a = storage(Some("s3://frames"), true, "0");
        a.aws_endpoint_url = Some("ftp://x".into());
        assert_eq!(
            StorageConfig::from_args(&a).unwrap_err().var,
            "AWS_ENDPOINT_URL"
        );
    }
}
