//! A real S3-compatible server for tests: moto's `moto_server` (PyPI, pinned in
//! scripts/moto-env, installed into target/moto-venv), on 127.0.0.1 and a free port, killed on
//! drop. Its data lives in memory: a server killed and started again ([`Moto::kill`],
//! [`Moto::run`], the bucket "unreachable" and back) starts with no buckets, on the same port.
//! A test that needs the bucket back *with* its objects gives Heldar a [`Gate`] in front of
//! moto instead and closes or silences that. The bucket is checked through moto's own S3 API
//! (plain HTTP: moto does not check signatures), never through Heldar.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;

/// moto lets anonymous requests create buckets but checks object reads against the ACLs; any
/// `Authorization` header counts as signed (moto does not verify it).
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIAHELDARTEST0001/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

pub struct Moto {
    child: Option<Child>,
    port: u16,
    http: reqwest::Client,
}

/// The `moto_server` executable, set up once per test binary.
fn moto_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/moto-env");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/moto-env");
        assert!(out.status.success(), "scripts/moto-env failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

impl Moto {
    pub async fn start() -> Moto {
        let mut m = Moto {
            child: None,
            // Port 0: the server binds a free port itself and names it (`run`). A port picked
            // here and handed over raced with the other tests' servers: a moto that lost its
            // port exited, and the test then talked to another test's moto and its bucket.
            port: 0,
            http: reqwest::Client::new(),
        };
        m.run().await;
        m
    }

    /// Start the server on this Moto's port (any free port the first time, then the same one,
    /// so a restarted server is at the same address) and wait until it answers.
    pub async fn run(&mut self) {
        let mut child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        // Werkzeug names the bound address (" * Running on http://127.0.0.1:PORT"); the rest of
        // stderr (a line per request) is drained so the server never blocks on it.
        let stderr = child.stderr.take().unwrap();
        let read = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stderr);
            let mut seen = String::new();
            let port = loop {
                let mut line = String::new();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    panic!("moto_server exited before listening:\n{seen}");
                }
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    break rest.trim().parse::<u16>().expect("moto_server's port");
                }
                seen.push_str(&line);
            };
            std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
            port
        });
        self.port = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("moto_server to listen within 60 s")
            .expect("reading moto_server's stderr");
        self.child = Some(child);
        let (http, url) = (self.http.clone(), self.endpoint());
        super::wait_for("moto_server to answer", Duration::from_secs(60), || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.ok().map(|_| ()) }
        })
        .await;
    }

    /// Stop the server (its buckets are gone with it); [`Moto::run`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.http.request(method, url).header("authorization", AUTH)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let r = self
            .request(
                reqwest::Method::PUT,
                format!("{}/{bucket}", self.endpoint()),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        let r = self
            .request(
                reqwest::Method::GET,
                format!("{}/{bucket}/{key}", self.endpoint()),
            )
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => Some(r.bytes().await.unwrap()),
            404 => None,
            s => panic!("GET {key}: {s}"),
        }
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let r = self
            .request(
                reqwest::Method::PUT,
                format!("{}/{bucket}/{key}", self.endpoint()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {key}: {}", r.status());
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) {
        let r = self
            .request(
                reqwest::Method::DELETE,
                format!("{}/{bucket}/{key}", self.endpoint()),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "DELETE {key}: {}", r.status());
    }

    /// Every key in the bucket under `prefix`, sorted.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let text = self
            .request(
                reqwest::Method::GET,
                format!("{}/{bucket}", self.endpoint()),
            )
            .query(&[("list-type", "2"), ("prefix", prefix)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut keys: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP gate in front of a server (moto): the endpoint the nodes are given, so a test
/// can make the bucket unreachable and bring it back **with its objects** — a killed moto comes
/// back empty (its data lives in memory), which a real bucket after an outage does not.
///
/// [`Gate::close`] does to a client what a killed server does: new connections are refused
/// (nothing listens on the port) and open ones are cut. [`Gate::silence`] does what a network
/// partition does: connections are taken and requests sent, but no answer ever comes.
/// [`Gate::open`] cuts whatever the silence holds and forwards again, on the same port. Bytes
/// are copied unchanged both ways; the gate speaks no HTTP.
pub struct Gate {
    port: u16,
    target: String,
    /// The accept loop; it owns every open connection, so aborting it cuts them all.
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Gate {
    /// A gate on a free port forwarding to `target` (`http://127.0.0.1:PORT`), open.
    pub async fn start(target: &str) -> Gate {
        let target = target
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .trim_end_matches('/')
            .to_string();
        let mut g = Gate {
            port: 0,
            target,
            running: None,
        };
        g.open().await;
        g
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Listen on this gate's port (a free one the first time).
    async fn listen(&mut self) -> tokio::net::TcpListener {
        self.close().await;
        // SO_REUSEADDR (tokio sets it on Unix): the port's closed connections in TIME_WAIT do
        // not keep it from being bound again.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("the gate cannot listen on port {}: {e}", self.port));
        self.port = listener.local_addr().unwrap().port();
        listener
    }

    /// Forward every connection (on the same port after the first time); connections a
    /// silence held are cut first.
    pub async fn open(&mut self) {
        let listener = self.listen().await;
        let target = self.target.clone();
        self.running = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        let target = target.clone();
                        conns.spawn(async move {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        }));
    }

    /// Take connections and never answer them (nor read them: what a client sends waits in the
    /// socket's buffers, as in a partition); open connections are cut first.
    pub async fn silence(&mut self) {
        let listener = self.listen().await;
        self.running = Some(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        }));
    }

    /// Refuse new connections and cut the open ones; returns once nothing listens.
    pub async fn close(&mut self) {
        if let Some(task) = self.running.take() {
            task.abort();
            // Dropping the task drops the listener and the JoinSet, which aborts (and so
            // closes) every connection.
            let _ = task.await;
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(task) = self.running.take() {
            task.abort();
        }
    }
}
