//! The HTTP client of the client commands: where Heldar is (`--url`/HELDAR_URL, else this
//! machine's Heldar from HELDAR_API_HOST/HELDAR_API_PORT, else `http://127.0.0.1:8000`), who is
//! asking (`--token`/HELDAR_TOKEN, sent as `Authorization: Bearer`), how long to wait
//! (`--timeout`), and what a failure means: every failed call becomes one [`CliError`] — the
//! API's own sentence and an [`Exit`] code chosen from the HTTP status and the error's `code`.
//!
//! It owns requests, answers, paging (`link: <…>; rel="next"`), streams (the event stream) and
//! downloads to a file (atomic: a broken download never leaves a partial file under the
//! asked-for name). It does not print anything but through [`CliError`]'s one line, and knows
//! nothing of tables (`output`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::exit::Exit;

/// Flags every client command takes (after the command or after its subcommand).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Talking to Heldar")]
pub struct ClientArgs {
    /// Heldar's address, e.g. https://cams.example.net [default: this machine's Heldar,
    /// http://HELDAR_API_HOST:HELDAR_API_PORT, i.e. http://127.0.0.1:8000]
    #[arg(long, env = "HELDAR_URL", global = true, value_name = "URL")]
    pub url: Option<String>,
    /// API token, sent as `Authorization: Bearer` (prefer HELDAR_TOKEN: a command line is
    /// visible to other users in `ps`)
    #[arg(
        long,
        env = "HELDAR_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table (one JSON object per line for `events`)
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for Heldar's answer (a live snapshot waits for the camera too)
    #[arg(long, global = true, value_name = "SECONDS", default_value = "60",
          value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!(
            "{s:?} is not a number of seconds from 0.001 to 86400"
        )),
    }
}

/// A failed command: one line on stderr (`heldar: <message>`) and an exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    /// The API's machine `code` (`not_found`, `timeout`, …) when the API answered.
    pub code: Option<String>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError {
            exit,
            message: message.into(),
            code: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(Exit::Usage, message)
    }

    pub fn other(message: impl Into<String>) -> CliError {
        CliError::new(Exit::Other, message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // One line, whatever the sentence holds.
        f.write_str(&self.message.replace(['\n', '\r'], " "))
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// Run a client command on a small runtime of its own and turn its outcome into the exit
/// status, printing a failure as one line.
pub fn run<F>(command: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = CliResult<()>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heldar: cannot start the async runtime: {e}");
            return Exit::Other.into();
        }
    };
    match runtime.block_on(command) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            eprintln!("heldar: {e}");
            e.exit.into()
        }
    }
}

/// Error `code`s of a capture that failed (the API's `CaptureError::code`): the camera's fault,
/// whatever the status (502, 504, or 422 for `no_source`/`forbidden_host`).
const CAPTURE_CODES: &[&str] = &[
    "unreachable",
    "timeout",
    "auth_failed",
    "bad_response",
    "no_source",
    "ffmpeg_missing",
    "tls",
    "forbidden_host",
];

/// A successful answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as `T`; an answer that does not fit is Heldar (or whatever answered) speaking
    /// another language.
    pub fn parse<T: DeserializeOwned>(&self) -> CliResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CliError::other(format!(
                "the answer is not the JSON this command expects ({e}); is --url a Heldar?"
            ))
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A whole list: its items, and the API's own body when it came in one page (what `--json`
/// prints unchanged; several pages are printed as one array of all their items).
#[derive(Debug)]
pub struct Listing {
    pub items: Vec<Value>,
    pub raw: Option<Bytes>,
}

impl Listing {
    /// Print it as JSON: the API's body if there was one page.
    pub fn print_json(&self) {
        match &self.raw {
            Some(body) => super::output::raw_json(body),
            None => super::output::json(&Value::Array(self.items.clone())),
        }
    }
}

/// A connection to one Heldar.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    timeout: Duration,
    /// `--json`: print the API's JSON, not tables.
    pub json: bool,
}

impl Client {
    pub fn new(args: &ClientArgs) -> CliResult<Client> {
        let local = crate::config::local_client_defaults();
        let (raw, token) = match &args.url {
            Some(u) => (u.clone(), args.token.clone()),
            // Only this machine's own Heldar gets this machine's HELDAR_API_TOKEN: a token from
            // the local settings is never sent to a URL the user named.
            None => (local.url, args.token.clone().or(local.token)),
        };
        let base = check_url(&raw)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("heldar-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(args.timeout)
            .build()
            .map_err(|e| CliError::other(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base,
            token: token.filter(|t| !t.trim().is_empty()),
            timeout: args.timeout,
            json: args.json,
        })
    }

    /// The server's address, as the commands say it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of an API path (`/api/v1/…`) or of a `url` field the API gave.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = self.url(path);
        let rb = self.http.request(method, &url);
        // The token goes to this Heldar only, never to another origin a link may name (as
        // reqwest drops it on a redirect to another host).
        let ours = url == self.base || url.starts_with(&format!("{}/", self.base));
        match &self.token {
            Some(t) if ours => rb.bearer_auth(t),
            _ => rb,
        }
    }

    /// The body of an error answer, within --timeout (empty if it does not come).
    async fn error_body(&self, resp: reqwest::Response) -> Bytes {
        tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Send and read the whole answer within --timeout; a failure status is a [`CliError`].
    async fn send(&self, rb: RequestBuilder) -> CliResult<Reply> {
        let resp = rb
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(self.api_error(status, &body));
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> CliResult<Reply> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> CliResult<Reply> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> CliResult<Reply> {
        self.send(self.request(Method::PATCH, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> CliResult<Reply> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Every item of a JSON-array list, following `link: <…>; rel="next"` pages where the
    /// server pages its lists.
    pub async fn get_all(&self, path: &str, query: &[(&str, String)]) -> CliResult<Listing> {
        let first = self.get(path, query).await?;
        let mut items: Vec<Value> = first.parse()?;
        let mut next = first.header("link").and_then(next_link);
        let mut raw = Some(first.body);
        // Bounded: a server that links in a circle cannot keep us here.
        for _ in 0..10_000 {
            let Some(page) = next.take() else { break };
            raw = None;
            let reply = self.send(self.request(Method::GET, &page)).await?;
            items.extend(reply.parse::<Vec<Value>>()?);
            next = reply.header("link").and_then(next_link);
        }
        Ok(Listing { items, raw })
    }

    /// Open a long answer (an event stream) and hand over the response once its headers are in:
    /// --timeout bounds the wait for them, not the stream.
    pub async fn open_stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> CliResult<reqwest::Response> {
        let rb = self.request(Method::GET, path).query(query);
        let resp = tokio::time::timeout(self.timeout, rb.send())
            .await
            .map_err(|_| self.no_answer())?
            .map_err(|e| self.transport(e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = self.error_body(resp).await;
            return Err(self.api_error(status, &body));
        }
        Ok(resp)
    }

    /// Download `path` into `dest` (`-` is stdout). The file appears under its name only once
    /// it is whole. `progress` hears (bytes so far, total if known) after each chunk (for a
    /// progress bar).
    pub async fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        dest: &Dest,
        progress: impl FnMut(u64, Option<u64>),
    ) -> CliResult<Downloaded> {
        self.download_as(Method::GET, path, query, dest, progress)
            .await
    }

    /// [`Client::download`] with another method (`POST …/snapshot?store=true`, which keeps the
    /// frame it returns).
    pub async fn download_as(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        dest: &Dest,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> CliResult<Downloaded> {
        use futures_util::StreamExt;
        use std::io::Write;
        let rb = self.request(method, path).query(query);
        let resp = tokio::time::timeout(self.timeout, rb.send())
            .await
            .map_err(|_| self.no_answer())?
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if !status.is_success() {
            let body = self.error_body(resp).await;
            return Err(self.api_error(status, &body));
        }
        let total = resp.content_length();
        let mut sink = dest.open()?;
        let mut stream = resp.bytes_stream();
        let mut written = 0u64;
        // --timeout bounds each wait for more bytes, not the whole transfer: a large file on a
        // slow link is fine as long as it keeps coming.
        loop {
            let next = tokio::time::timeout(self.timeout, stream.next())
                .await
                .map_err(|_| self.no_answer())?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| self.transport(e))?;
            sink.write_all(&chunk)
                .map_err(|e| CliError::other(format!("cannot write {dest}: {e}")))?;
            written += chunk.len() as u64;
            progress(written, total);
        }
        sink.finish(dest)?;
        Ok(Downloaded {
            headers,
            bytes: written,
        })
    }

    fn no_answer(&self) -> CliError {
        CliError::new(
            Exit::Unreachable,
            format!(
                "Heldar at {} did not answer within {} s (--timeout)",
                self.base,
                fmt_secs(self.timeout)
            ),
        )
    }

    /// A request that got no HTTP answer.
    fn transport(&self, e: reqwest::Error) -> CliError {
        if e.is_timeout() {
            return self.no_answer();
        }
        let cause = root_cause(&e);
        let message = if e.is_connect() {
            format!("cannot reach Heldar at {}: {cause}", self.base)
        } else {
            format!("the connection to Heldar at {} failed: {cause}", self.base)
        };
        CliError::new(Exit::Unreachable, message)
    }

    /// An HTTP error answer: the API's sentence, and the exit code its status and code mean.
    fn api_error(&self, status: StatusCode, body: &[u8]) -> CliError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let sentence = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let code = parsed
            .as_ref()
            .and_then(|v| v.get("code"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let exit = exit_for(status, code);
        let mut message = sentence.unwrap_or_else(|| {
            // Not Heldar's JSON (a proxy's page, another server): say what answered.
            let text = String::from_utf8_lossy(body);
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let text: String = text.chars().take(200).collect();
            if text.is_empty() {
                format!("{} answered {status}", self.base)
            } else {
                format!("{} answered {status}: {text}", self.base)
            }
        });
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            message.push_str(" (give the CLI a token with --token or HELDAR_TOKEN)");
        }
        CliError {
            exit,
            message,
            code: (!code.is_empty()).then(|| code.to_string()),
        }
    }
}

/// The exit code of an HTTP error answer.
pub fn exit_for(status: StatusCode, code: &str) -> Exit {
    // A 4xx `forbidden_host` refuses the address the request gave (an ONVIF probe of a
    // metadata host): rejected input, not a camera that failed.
    let refused_input = code == "forbidden_host" && status.is_client_error();
    if CAPTURE_CODES.contains(&code) && !refused_input {
        return Exit::Camera;
    }
    match status.as_u16() {
        401 | 403 => Exit::Auth,
        404 => Exit::NotFound,
        400 | 409 | 413 | 415 | 416 | 422 => Exit::Rejected,
        502 | 504 => Exit::Camera,
        500..=599 => Exit::Server,
        _ => Exit::Other,
    }
}

/// One path segment (a camera or schedule id as typed), percent-encoded so that whatever was
/// typed reaches the API as that one segment and gets the API's own answer about it. Only an
/// empty id and `.`/`..` are refused here: a URL would resolve those to another path.
pub fn seg(what: &str, s: &str) -> CliResult<String> {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');
    if s.is_empty() || s == "." || s == ".." {
        return Err(CliError::usage(format!("{s:?} is not a {what} id")));
    }
    Ok(utf8_percent_encode(s, KEEP).to_string())
}

/// `--url` checked: http or https with a host, no query; kept without a trailing `/` so API
/// paths append (a path prefix, for Heldar behind a reverse proxy, is kept).
fn check_url(raw: &str) -> CliResult<String> {
    let bad = |why: &str| CliError::usage(format!("--url / HELDAR_URL {raw:?} {why}"));
    let url = url::Url::parse(raw.trim())
        .map_err(|_| bad("is not a URL such as http://127.0.0.1:8000"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials; use --token or HELDAR_TOKEN",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// The `rel="next"` target of a Link header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which is what a person
/// can act on; reqwest's outer layers only say that a request failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn fmt_secs(d: Duration) -> String {
    // f64's shortest form: `60`, `2.5`, `0.001`.
    format!("{}", d.as_secs_f64())
}

/// Where a download goes: a file, or stdout (`-o -`).
#[derive(Debug, Clone)]
pub enum Dest {
    Stdout,
    File(PathBuf),
}

impl Dest {
    /// `-o` as given; `-` is stdout, which must not be a terminal (JPEG bytes would garble it).
    pub fn from_arg(arg: &str) -> CliResult<Dest> {
        if arg == "-" {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(CliError::usage(
                    "-o - writes the image or video to stdout, which is a terminal here; redirect \
                     it (> file.jpg) or name a file with -o",
                ));
            }
            return Ok(Dest::Stdout);
        }
        Ok(Dest::File(PathBuf::from(arg)))
    }

    fn open(&self) -> CliResult<Sink> {
        match self {
            Dest::Stdout => Ok(Sink::Stdout(std::io::stdout().lock())),
            Dest::File(path) => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                tempfile::Builder::new()
                    .prefix(".heldar-download")
                    .tempfile_in(dir)
                    .map(Sink::File)
                    .map_err(|e| CliError::other(format!("cannot write {self}: {e}")))
            }
        }
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Stdout => f.write_str("stdout"),
            Dest::File(p) => write!(f, "{}", p.display()),
        }
    }
}

enum Sink {
    Stdout(std::io::StdoutLock<'static>),
    File(tempfile::NamedTempFile),
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::File(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::File(f) => f.flush(),
        }
    }
}

impl Sink {
    /// Put a whole download in place (a file keeps the usual 0644-under-umask mode, not the
    /// temporary file's 0600).
    fn finish(self, dest: &Dest) -> CliResult<()> {
        let fail = |e: &dyn std::fmt::Display| CliError::other(format!("cannot write {dest}: {e}"));
        match (self, dest) {
            (Sink::Stdout(mut s), _) => std::io::Write::flush(&mut s).map_err(|e| fail(&e)),
            (Sink::File(f), Dest::File(path)) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = 0o666 & !current_umask();
                std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode))
                    .map_err(|e| fail(&e))?;
                f.persist(path).map(|_| ()).map_err(|e| fail(&e.error))
            }
            (Sink::File(_), Dest::Stdout) => unreachable!("a file sink is opened for a file"),
        }
    }
}

/// The process's umask (read by setting it and putting it back; the CLI is single-threaded
/// at this point of a download).
fn current_umask() -> u32 {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits()
}

/// What a download brought.
#[derive(Debug)]
pub struct Downloaded {
    pub headers: HeaderMap,
    pub bytes: u64,
}

impl Downloaded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_kept_without_a_trailing_slash() {
        assert_eq!(
            check_url("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert_eq!(
            check_url("https://cams.example.net/heldar/").unwrap(),
            "https://cams.example.net/heldar"
        );
        for bad in [
            "127.0.0.1:8000",
            "ftp://x",
            "http://",
            "http://h/?a=1",
            "http://u:p@h",
        ] {
            assert_eq!(check_url(bad).unwrap_err().exit, Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn statuses_and_codes_map_to_exit_codes() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        assert_eq!(exit_for(s(404), "not_found"), Exit::NotFound);
        assert_eq!(exit_for(s(401), "unauthorized"), Exit::Auth);
        assert_eq!(exit_for(s(403), "forbidden"), Exit::Auth);
        assert_eq!(exit_for(s(502), "unreachable"), Exit::Camera);
        assert_eq!(exit_for(s(504), "timeout"), Exit::Camera);
        assert_eq!(exit_for(s(422), "no_source"), Exit::Camera);
        assert_eq!(exit_for(s(422), "forbidden_host"), Exit::Rejected);
        assert_eq!(exit_for(s(502), "forbidden_host"), Exit::Camera);
        assert_eq!(exit_for(s(422), "invalid_field"), Exit::Rejected);
        assert_eq!(exit_for(s(409), "conflict"), Exit::Rejected);
        assert_eq!(exit_for(s(400), "bad_request"), Exit::Rejected);
        assert_eq!(exit_for(s(507), "disk_full"), Exit::Server);
        assert_eq!(exit_for(s(500), "internal"), Exit::Server);
        assert_eq!(exit_for(s(405), "method_not_allowed"), Exit::Other);
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        assert_eq!(
            next_link(r#"</api/v1/x?after=b>; rel="next", </api/v1/x>; rel="first""#).as_deref(),
            Some("/api/v1/x?after=b")
        );
        assert_eq!(next_link(r#"</api/v1/x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
