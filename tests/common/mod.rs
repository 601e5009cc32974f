//! Shared test harness: the real application on an ephemeral port with a temp data dir.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod browser;
pub mod fake_onvif;
pub mod fake_rtsp;
pub mod fleet;
pub mod frames;
pub mod moto;
pub mod postgres;
pub mod rtsp;
pub mod tls;

use std::time::Duration;

use heldar::app::{AppState, Application, BuildOptions};
use heldar::config::Config;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: tempfile::TempDir,
}

/// Whether this run puts the apps of the suite on PostgreSQL (`HELDAR_TEST_BACKEND=postgres`,
/// as `scripts/test` does on its second pass) rather than on the embedded SQLite.
///
/// Every app the harness starts ([`spawn_app_with`], [`heldar_cmd`]) then gets a fresh database
/// of its own on the test binary's throw-away cluster, unless the test chose its database
/// itself. Tests about SQLite itself (its file, its write lock) keep it either way.
pub fn postgres_backend() -> bool {
    match std::env::var("HELDAR_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("HELDAR_TEST_BACKEND={other:?}: expected sqlite or postgres"),
    }
}

/// Settings for tests: everything under a temp dir, port 0, a short capture deadline, no disk
/// floor (CI disks can be small).
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::defaults_in(dir);
    c.api_port = 0;
    c.capture_timeout = Duration::from_secs(2);
    c.min_free_disk_bytes = 0;
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, BuildOptions::default()).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config), opts: BuildOptions) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    tweak(&mut config);
    // The default database of whatever data dir the test chose: on the PostgreSQL pass, that
    // data dir's database on the cluster, the one a `heldar_cmd` process on it also gets.
    let config_chose_postgres =
        postgres_backend() && config.database_url == test_config(&config.data_dir).database_url;
    if config_chose_postgres {
        config.database_url = postgres_database_of(&config.data_dir);
    }
    let shutdown = CancellationToken::new();
    let app = Application::build(config, opts, shutdown.clone())
        .await
        .expect("the app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    if postgres_backend() && config_chose_postgres {
        assert_eq!(
            state.ops.db.backend(),
            heldar::db::Backend::Postgres,
            "HELDAR_TEST_BACKEND=postgres, yet the app runs on SQLite"
        );
    }
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        shutdown,
        server,
        dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// POST a camera and insist it was created.
    pub async fn create_camera(&self, body: Value) -> Value {
        let resp = self.post_json("/api/v1/cameras", &body).await;
        let status = resp.status();
        let json: Value = resp.json().await.expect("json body");
        assert_eq!(status, 201, "creating {body}: {json}");
        json
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("the server stops within 30 s");
        r.expect("server task").expect("server ran cleanly");
    }
}

/// Status, and the JSON error body, of a failed request.
pub async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error bodies are JSON");
    assert!(
        body["error"].as_str().is_some_and(|s| s.len() > 10),
        "{body}"
    );
    assert!(body["code"].as_str().is_some(), "{body}");
    (status, body)
}

/// Poll `check` until it returns `Some`, failing after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The camera as the API shows it, once its status says `state`. A live capture's outcome is
/// recorded after the frame (or the error) is returned, so the row may take a moment to say so.
pub async fn camera_in_state(app: &TestApp, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = app
            .get(&format!("/api/v1/cameras/{id}"))
            .await
            .json()
            .await
            .expect("a camera as JSON");
        if v["status"]["state"] == state {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "camera {id} never reached state {state}: {}",
            v["status"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `heldar` as a child process, run in `dir` (so no developer `.env` is read) with inherited
/// `HELDAR_*` settings scrubbed and its data under `dir/data`.
pub fn heldar_cmd(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_heldar"));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("HELDAR_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HELDAR_DATA_DIR", dir.join("data"));
    if postgres_backend() {
        cmd.env(
            "HELDAR_DATABASE_URL",
            postgres_database_of(&dir.join("data")),
        );
    }
    cmd
}

/// The database URL of the install whose data dir is `data`, on this run's back-end: its SQLite
/// file, or its database on the cluster on the PostgreSQL pass.
pub fn database_url_of(data: &std::path::Path) -> String {
    if postgres_backend() {
        postgres_database_of(data)
    } else {
        format!("sqlite://{}", data.join("heldar.db").display())
    }
}

/// Run one sqlx expression on whichever engine `pool` (a `heldar::db::Pool`) is: `conn` names
/// its inner pool in `body`, which must give one type on both (a count, a scalar, a Vec of
/// them). The SQL takes `$N` placeholders, which both engines read.
#[macro_export]
macro_rules! on_pool {
    ($pool:expr, |$conn:ident| $body:expr) => {
        match $pool {
            heldar::db::Pool::Sqlite($conn) => $body,
            heldar::db::Pool::Postgres($conn) => $body,
        }
    };
}

/// The PostgreSQL database of the install whose data dir is `data`: made on first use and
/// remembered for this test process (not in the folder: tests count the files there), so an
/// app restarted on the same data dir, in process or as a `heldar_cmd`, finds its rows again.
fn postgres_database_of(data: &std::path::Path) -> String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BY_DIR: Mutex<Option<HashMap<std::path::PathBuf, String>>> = Mutex::new(None);
    let mut by_dir = BY_DIR.lock().unwrap();
    if let Some(url) = by_dir.get_or_insert_with(HashMap::new).get(data) {
        return url.clone();
    }
    // heldar_cmd is synchronous and may run inside a test's runtime: make the database on a
    // thread with a runtime of its own.
    let url = std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(postgres::fresh_database())
    })
    .join()
    .expect("making a test database");
    by_dir
        .get_or_insert_with(HashMap::new)
        .insert(data.to_path_buf(), url.clone());
    url
}

/// A running `heldar serve` whose log lines are collected.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Start `cmd` (a `heldar serve …` command) on port 0 and wait for its `listening on` line.
    pub fn start(mut cmd: std::process::Command) -> ServerProcess {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .env("HELDAR_API_PORT", "0")
            .env("HELDAR_MIN_FREE_DISK_GB", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start heldar");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let l = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                l.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `listening on` line; logs: {:?}", logs.lock().unwrap()));
        ServerProcess {
            child,
            base: format!("http://{addr}"),
            logs,
            reader: Some(reader),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Its `GET /metrics` text (metrics open to loopback without a token, the default).
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The first log line containing `needle`, waiting up to `limit` for it.
    pub async fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let logs = self.logs.clone();
        wait_for(&format!("a log line with {needle:?}"), limit, || {
            let line = logs
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            async move { line }
        })
        .await
    }

    /// Send `signal`, wait (bounded) for the exit, return the status and every log line.
    pub fn stop_with(
        mut self,
        signal: nix::sys::signal::Signal,
    ) -> (std::process::ExitStatus, Vec<String>) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "heldar did not exit after {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.reader.take().unwrap().join().unwrap();
        let logs = self.logs.lock().unwrap().clone();
        (status, logs)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of an unlabelled counter or gauge in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
