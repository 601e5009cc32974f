//! Frames and timelapse videos in an S3-compatible bucket (`HELDAR_STORAGE_URL=s3://bucket/prefix`,
//! docs/storage.md), through the `object_store` crate.
//!
//! The keys mirror the local layout: a frame is `{prefix}/{camera_id}/{YYYYmmddTHHMMSSfffZ}.jpg`
//! (the same names as in snapshots_dir, so the row's `path` is the key without the prefix), a
//! timelapse video `{prefix}/_timelapses/{camera_id}/{tl_id}.{mp4|webm}` (`_timelapses` cannot
//! be a camera id, so frames and videos never share a folder).
//!
//! What it owns: the bucket client (endpoint, region, credentials, bounded retries and
//! deadlines), the key layout, the upload of a frame — one PUT, which S3 makes visible whole or
//! not at all, so there are no temporary objects — and the listing that reconciliation sorts
//! into Heldar's names and everything else. What it does not own: the database, and deciding
//! what may be deleted (the callers delete only keys a row names or keys in Heldar's naming,
//! as with local files).
//!
//! Failure: every error is a [`super::StoreError::Unavailable`] whose text names the bucket
//! (`s3://bucket/prefix`) and never a credential; a PUT that fails leaves no object and no row.
//! Requests are retried at most twice within [`RETRY_TIMEOUT`] and each is bounded by
//! [`REQUEST_TIMEOUT`], so a bucket that is down fails a capture within seconds instead of
//! holding it for the client's default three minutes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use super::{file_name, parse_file_name, StoreError, StoredFile};
use super::{CameraFolder, FolderEntry, FrameFile, TopLevel};
use crate::config::S3Config;
use crate::models::CameraId;

/// One request's deadline, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The piece a streamed upload holds in memory: a file up to this size is one PUT, a larger one
/// a multipart upload of parts this size (S3's smallest part is 5 MiB).
pub const STREAM_PART: usize = 8 * 1024 * 1024;
/// All retries of one operation end by then.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The folder of timelapse videos under the prefix; not a valid camera id.
pub const VIDEOS: &str = "_timelapses";

/// The bucket, as the frame and video stores use it.
#[derive(Debug)]
pub struct Bucket {
    s3: AmazonS3,
    /// Without leading or trailing `/`; may be empty.
    prefix: String,
    /// `s3://bucket/prefix`, for errors and logs.
    url: String,
    presign: Option<Duration>,
}

/// A failed bucket operation: one line naming the bucket, never a credential (object_store's
/// errors name the request's URL, the HTTP status and the server's answer, not the signing key).
/// The cause is [`cause`]'s sentence, at most [`ERROR_CHARS`] characters.
fn unavailable(url: &str, what: &str, e: impl std::error::Error + 'static) -> StoreError {
    let why = cause(&e, ERROR_CHARS);
    StoreError::Unavailable(format!("the frame storage {url} failed to {what}: {why}"))
}

/// What went wrong, on one line an operator can act on, at most `max` characters:
/// object_store's own message (the method, the URL with the endpoint's host and port, the
/// retries) followed by every cause under it that it does not already say, down to the
/// socket's ("Connection refused (os error 111)"), which object_store's message alone leaves
/// out. An S3 error document in the server's answer (`<Error><Code>NoSuchBucket</Code>
/// <Message>…</Message>…</Error>`, the S3 API reference's "Error responses") is shortened to
/// `NoSuchBucket: …`. Past `max`, the first message is cut (its URL is the longest part), so
/// the deepest causes, the ones that say why, are kept whole.
fn cause(e: &(dyn std::error::Error + 'static), max: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = readable_s3_errors(&err.to_string());
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    let chars = |s: &str| s.chars().count();
    let total = parts
        .iter()
        .map(|p| chars(p) + 2)
        .sum::<usize>()
        .saturating_sub(2);
    if total > max {
        if let Some(first) = parts.first_mut() {
            // What the first may keep: at least a few words of it.
            let keep = (chars(first) + max).saturating_sub(total + 1).max(40);
            if let Some((i, _)) = first.char_indices().nth(keep) {
                first.truncate(i);
                first.push('…');
            }
        }
    }
    let whole = parts.join(": ");
    match whole.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &whole[..i]),
        None => whole,
    }
}

/// `text` with each S3 error document in it (with the XML declaration right before it, if
/// any) replaced by its `Code: Message`. A document that does not parse, or has no code, is
/// left as it is.
fn readable_s3_errors(text: &str) -> String {
    const OPEN: &str = "<Error>";
    const CLOSE: &str = "</Error>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let Some(len) = rest[start..].find(CLOSE).map(|e| e + CLOSE.len()) else {
            break;
        };
        let doc = &rest[start..start + len];
        let before = &rest[..start];
        match error_document(doc) {
            Some(said) => {
                // A declaration directly before the document (blanks between) is its own.
                let trimmed = before.trim_end();
                let declared = trimmed
                    .strip_suffix("?>")
                    .and_then(|t| t.rfind("<?xml").filter(|d| !t[*d..].contains('>')));
                let before = match declared {
                    Some(d) => &trimmed[..d],
                    None => before,
                };
                out.push_str(before);
                out.push_str(&said);
            }
            None => {
                out.push_str(before);
                out.push_str(doc);
            }
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// An S3 error document's `Code: Message` (or its code alone), if it has a code. Read with the
/// ONVIF client's reader: a small element tree, entities and DOCTYPEs refused.
fn error_document(doc: &str) -> Option<String> {
    let doc = crate::onvif::soap::parse(doc.as_bytes()).ok()?;
    let code = doc
        .text_at(&["Code"])
        .map(str::trim)
        .filter(|c| !c.is_empty())?;
    Some(match doc.text_at(&["Message"]).map(str::trim) {
        Some(m) if !m.is_empty() => format!("{code}: {m}"),
        _ => code.to_string(),
    })
}

/// Longest cause quoted in a storage error.
const ERROR_CHARS: usize = 400;

impl Bucket {
    /// A client for the bucket. Nothing is contacted yet.
    pub fn open(c: &S3Config) -> Result<Arc<Bucket>, StoreError> {
        let url = c.url();
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key)
            .with_retry(object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: RETRY_TIMEOUT,
                backoff: object_store::BackoffConfig::default(),
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(CONNECT_TIMEOUT),
            );
        if let Some(t) = &c.session_token {
            b = b.with_token(t);
        }
        if let Some(e) = &c.endpoint {
            // An http:// endpoint (a MinIO on the LAN, a test server) is allowed exactly when
            // the operator wrote one; path-style requests, which every S3-compatible server
            // understands.
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let s3 = b
            .build()
            .map_err(|e| unavailable(&url, "set up its client", e))?;
        Ok(Arc::new(Bucket {
            s3,
            prefix: c.prefix.clone(),
            url,
            presign: c.presign,
        }))
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long presigned media URLs live; `None`: the media route streams.
    pub fn presign(&self) -> Option<Duration> {
        self.presign
    }

    /// The key of `rel` (`{camera}/{file}`, or `_timelapses/{camera}/{file}`).
    pub fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn root(&self) -> Option<Key> {
        (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()))
    }

    /// `key` relative to the prefix.
    fn rel(&self, key: &Key) -> String {
        let k = key.as_ref();
        match self.prefix.is_empty() {
            true => k.to_string(),
            false => k
                .strip_prefix(&self.prefix)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(k)
                .to_string(),
        }
    }

    /// Upload a frame under its name, `-N` added when the name is taken (a conditional PUT, so
    /// two frames of one millisecond both survive, as with local files). Returns when the
    /// object is stored: the caller writes the row only then.
    pub async fn put_frame(
        &self,
        camera: &CameraId,
        taken_at: DateTime<Utc>,
        bytes: bytes::Bytes,
    ) -> Result<StoredFile, StoreError> {
        let size = bytes.len() as u64;
        let payload = PutPayload::from(bytes);
        for n in 0..1000u32 {
            let rel = format!("{camera}/{}", file_name(taken_at, n));
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .s3
                .put_opts(&self.key(&rel), payload.clone(), opts)
                .await
            {
                Ok(_) => {
                    return Ok(StoredFile {
                        rel_path: rel,
                        size,
                    })
                }
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => continue,
                Err(e) => return Err(unavailable(&self.url, "store a frame", e)),
            }
        }
        Err(StoreError::Io(format!(
            "1,000 frames of camera {camera} share the millisecond {taken_at}"
        )))
    }

    /// Upload a local file (a finished video) to `rel`.
    pub async fn put_file(&self, local: &std::path::Path, rel: &str) -> Result<(), StoreError> {
        let bytes = tokio::fs::read(local)
            .await
            .map_err(|e| StoreError::Io(format!("cannot read {}: {e}", local.display())))?;
        self.s3
            .put(&self.key(rel), PutPayload::from(bytes))
            .await
            .map_err(|e| unavailable(&self.url, "store a video", e))?;
        Ok(())
    }

    /// Upload the local file `local` to `rel`, replacing what is there, read and sent in pieces
    /// (`heldar migrate`'s copy of a frame or video under the name its row already has): a file
    /// up to [`STREAM_PART`] goes up in one PUT, a larger one (a long timelapse video) as a
    /// multipart upload of parts that size, at most two in flight, so memory stays bounded
    /// whatever the file's size. `each` sees every piece read, in order (the caller's
    /// checksum). Returns the bytes sent. A failed upload is aborted (no parts left behind).
    pub async fn put_streamed(
        &self,
        local: &std::path::Path,
        rel: &str,
        mut each: impl FnMut(&[u8]),
    ) -> Result<u64, StoreError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let cannot_read =
            |e: std::io::Error| StoreError::Io(format!("cannot read {}: {e}", local.display()));
        let mut file = tokio::fs::File::open(local).await.map_err(cannot_read)?;
        let store: Arc<dyn ObjectStore> = Arc::new(self.s3.clone());
        let mut out =
            object_store::buffered::BufWriter::with_capacity(store, self.key(rel), STREAM_PART)
                .with_max_concurrency(2);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        let result: Result<(), StoreError> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(cannot_read)?;
                if n == 0 {
                    break;
                }
                each(&buf[..n]);
                out.write_all(&buf[..n])
                    .await
                    .map_err(|e| unavailable(&self.url, "store an object", e))?;
                sent += n as u64;
            }
            out.shutdown()
                .await
                .map_err(|e| unavailable(&self.url, "store an object", e))
        }
        .await;
        if let Err(e) = result {
            let _ = out.abort().await;
            return Err(e);
        }
        Ok(sent)
    }

    /// Read the object as a stream of pieces, `each` called on every one in order; returns its
    /// size. `NotFound` as an `io::ErrorKind::NotFound`.
    pub async fn read_streamed(
        &self,
        rel: &str,
        mut each: impl FnMut(&[u8]),
    ) -> std::io::Result<u64> {
        let r = self.s3.get(&self.key(rel)).await.map_err(io_error)?;
        let mut stream = r.into_stream();
        let mut size = 0u64;
        while let Some(piece) = stream.try_next().await.map_err(io_error)? {
            each(&piece);
            size += piece.len() as u64;
        }
        Ok(size)
    }

    /// The whole object; `NotFound` as an `io::ErrorKind::NotFound`.
    pub async fn get(&self, rel: &str) -> std::io::Result<bytes::Bytes> {
        let r = self.s3.get(&self.key(rel)).await.map_err(io_error)?;
        r.bytes().await.map_err(io_error)
    }

    /// The object's size, if it exists.
    pub async fn size(&self, rel: &str) -> std::io::Result<u64> {
        Ok(self.s3.head(&self.key(rel)).await.map_err(io_error)?.size)
    }

    /// Bytes `a..=b` of the object, as a stream (the media route's Range).
    pub async fn stream_range(
        &self,
        rel: &str,
        a: u64,
        b: u64,
    ) -> std::io::Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>>> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(a..b + 1)),
            ..Default::default()
        };
        let r = self
            .s3
            .get_opts(&self.key(rel), opts)
            .await
            .map_err(io_error)?;
        Ok(r.into_stream().map_err(io_error))
    }

    /// Does the object exist? An error other than "not found" counts as yes (as for files).
    pub async fn exists(&self, rel: &str) -> bool {
        !matches!(
            self.s3.head(&self.key(rel)).await,
            Err(object_store::Error::NotFound { .. })
        )
    }

    /// Delete an object. S3 answers a delete of a missing key with success, so this is `Ok`
    /// whether or not it was there.
    pub async fn delete(&self, rel: &str) -> std::io::Result<()> {
        self.s3.delete(&self.key(rel)).await.map_err(io_error)
    }

    /// A GET URL of `rel` signed for the configured time (`None` when presigning is off).
    pub async fn presigned(&self, rel: &str) -> Option<std::io::Result<url::Url>> {
        let ttl = self.presign?;
        Some(
            self.s3
                .signed_url(axum::http::Method::GET, &self.key(rel), ttl)
                .await
                .map_err(io_error),
        )
    }

    /// The object `rel`'s text if it exists; if not, `text` is stored there with a conditional
    /// PUT (`None`). When another process's PUT won the race, its text is returned.
    pub async fn claim(&self, rel: &str, text: &str) -> std::io::Result<Option<String>> {
        let read = |b: bytes::Bytes| String::from_utf8_lossy(&b).into_owned();
        match self.get(rel).await {
            Ok(b) => return Ok(Some(read(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes::Bytes::from(text.to_string()));
        match self.s3.put_opts(&self.key(rel), payload, opts).await {
            Ok(_) => Ok(None),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Some(read(self.get(rel).await?))),
            Err(e) => Err(io_error(e)),
        }
    }

    /// Can the bucket be listed right now? (The health check.)
    pub async fn check(&self) -> Result<(), StoreError> {
        self.s3
            .list_with_delimiter(self.root().as_ref())
            .await
            .map(|_| ())
            .map_err(|e| unavailable(&self.url, "answer a listing", e))
    }

    /// The top level under the prefix, sorted as a local scan sorts snapshots_dir: folders
    /// named like a camera id, and everything else by name (`_timelapses` is Heldar's own).
    pub async fn scan_top(&self) -> std::io::Result<TopLevel> {
        let list = self
            .s3
            .list_with_delimiter(self.root().as_ref())
            .await
            .map_err(io_error)?;
        let mut top = TopLevel::default();
        for p in &list.common_prefixes {
            let name = self.rel(p);
            match CameraId::parse(&name) {
                Ok(camera) => top.folders.push(FolderEntry {
                    camera,
                    modified: None,
                }),
                Err(_) if name == VIDEOS => {}
                Err(_) => top.foreign.push(format!("{name}/")),
            }
        }
        for o in &list.objects {
            let rel = self.rel(&o.location);
            // The install marker is Heldar's own (`FrameStore::claim`).
            if rel != super::MARKER {
                top.foreign.push(rel);
            }
        }
        Ok(top)
    }

    /// One camera's objects: frame-named keys directly in its folder, and the rest by name.
    /// With `since`, only keys that sort after the frame name of `since` less a millisecond: the
    /// frames taken since then (names sort by time), which is all the crash window needs —
    /// S3 lists from there (`start-after`), so an old archive costs no requests.
    pub async fn scan_folder(
        &self,
        camera: &CameraId,
        since: Option<DateTime<Utc>>,
    ) -> std::io::Result<CameraFolder> {
        let mut folder = CameraFolder {
            camera: camera.clone(),
            frames: Vec::new(),
            temp_files: Vec::new(),
            foreign: Vec::new(),
        };
        let dir = self.key(camera.as_str());
        let mut list = match since {
            Some(t) => {
                let before = t - chrono::Duration::milliseconds(1);
                let offset = self.key(&format!("{camera}/{}", file_name(before, 0)));
                self.s3.list_with_offset(Some(&dir), &offset)
            }
            None => self.s3.list(Some(&dir)),
        };
        while let Some(o) = list.try_next().await.map_err(io_error)? {
            let rel = self.rel(&o.location);
            let name = rel
                .strip_prefix(camera.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(&rel);
            match parse_file_name(name) {
                Some(taken_at) if !name.contains('/') => folder.frames.push(FrameFile {
                    rel_path: rel.clone(),
                    taken_at,
                }),
                // The store never makes temporary objects; such a name is someone else's.
                _ => folder.foreign.push(name.to_string()),
            }
        }
        Ok(folder)
    }

    /// Delete every frame-named object of a camera; other keys are left (and counted).
    pub async fn remove_camera(&self, camera: &CameraId) -> std::io::Result<super::FolderRemoval> {
        let folder = self.scan_folder(camera, None).await?;
        let mut out = super::FolderRemoval {
            kept: folder.foreign.len() as u64,
            ..Default::default()
        };
        for f in &folder.frames {
            self.delete(&f.rel_path).await?;
            out.removed += 1;
        }
        Ok(out)
    }

    /// Every key under `{prefix}/_timelapses/{camera}/` whose name passes `ours`.
    pub async fn list_videos(&self, camera: &CameraId) -> std::io::Result<Vec<String>> {
        let dir = self.key(&format!("{VIDEOS}/{camera}"));
        let objects: Vec<_> = self
            .s3
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(io_error)?;
        Ok(objects
            .iter()
            .map(|o| self.rel(&o.location))
            .filter_map(|r| r.strip_prefix(&format!("{VIDEOS}/")).map(str::to_string))
            .collect())
    }
}

/// object_store's error as an `io::Error`, keeping "not found" recognisable.
fn io_error(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string())
        }
        other => std::io::Error::other(cause(&other, ERROR_CHARS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_error_document_reads_as_its_code_and_message() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" \
                    encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified \
                    bucket does not exist</Message><BucketName>frames</BucketName>\
                    <RequestId>abc</RequestId></Error> (after 0 retries)";
        assert_eq!(
            readable_s3_errors(body),
            "Server returned non-2xx status code: 404 Not Found: NoSuchBucket: The specified \
             bucket does not exist (after 0 retries)"
        );
        // Entities are XML's own; a document with no code, or one that does not parse, stays.
        assert_eq!(
            readable_s3_errors(
                "<Error><Code>AccessDenied</Code><Message>Tom&apos;s key</Message></Error>"
            ),
            "AccessDenied: Tom's key"
        );
        for kept in [
            "<Error><Message>no code</Message></Error>",
            "<Error><Code> </Code><Message>blank code</Message></Error>",
            "<Error><Code>X</Code></Errr></Error>",
            "</Error> before <Error>",
            "<Error> never closed",
            "plain words",
        ] {
            assert_eq!(readable_s3_errors(kept), kept);
        }
        // A stray close before a document, two documents, and a declaration that is not the
        // document's own (text between) which stays.
        assert_eq!(
            readable_s3_errors(
                "a </Error> b <Error><Code>SlowDown</Code></Error>, then <Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
            ),
            "a </Error> b SlowDown, then NoSuchKey: gone"
        );
        assert_eq!(
            readable_s3_errors("<?xml version=\"1.0\"?> said: <Error><Code>X</Code></Error>"),
            "<?xml version=\"1.0\"?> said: X"
        );
    }

    /// Past the limit the first message (object_store's, with its long URL) is cut, and the
    /// deepest cause is kept whole.
    #[test]
    fn a_long_cause_keeps_its_deepest_reason() {
        #[derive(Debug)]
        struct Level(String, Option<Box<Level>>);
        impl std::fmt::Display for Level {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Level {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let socket = Level("Connection refused (os error 111)".into(), None);
        let top = Level(
            format!(
                "Error performing PUT http://minio:9000/{} in 1s",
                "x/".repeat(300)
            ),
            Some(Box::new(socket)),
        );
        let said = cause(&top, 400);
        assert!(said.chars().count() <= 400, "{said}");
        assert!(
            said.starts_with("Error performing PUT http://minio:9000/x/"),
            "{said}"
        );
        assert!(
            said.ends_with("…: Connection refused (os error 111)"),
            "{said}"
        );
        // Short enough: untouched.
        let short = Level("a".into(), Some(Box::new(Level("b".into(), None))));
        assert_eq!(cause(&short, 400), "a: b");
    }

    /// The chain's causes are all said once, down to the socket's.
    #[test]
    fn a_cause_says_every_level_once() {
        #[derive(Debug)]
        struct Level(&'static str, Option<Box<Level>>);
        impl std::fmt::Display for Level {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Level {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let socket = Level("Connection refused (os error 111)", None);
        let http = Level("error sending request", Some(Box::new(socket)));
        let top = Level(
            "Generic S3 error: Error performing PUT http://127.0.0.1:9/frames/x.jpg in 1s - error sending request",
            Some(Box::new(http)),
        );
        assert_eq!(
            cause(&top, ERROR_CHARS),
            "Generic S3 error: Error performing PUT http://127.0.0.1:9/frames/x.jpg in 1s - error \
             sending request: Connection refused (os error 111)"
        );
    }
}
