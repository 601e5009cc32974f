//! A real RTSP source for tests: GStreamer's RTSP server serving a generated H.264 stream
//! (`tests/fixtures/rtsp_server.py`), as a child process of the test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running RTSP server; killed when dropped.
pub struct RtspServer {
    child: Child,
    pub port: u16,
}

impl RtspServer {
    pub fn start(extra: &[&str]) -> RtspServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rtsp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", "0"])
            .args(extra)
            // Piped stdin: the server exits when this test process goes away.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the RTSP server fixture (is python3-gi installed? run scripts/test)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the RTSP server announces its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the RTSP server: {line:?}"));
        RtspServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/stream", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
