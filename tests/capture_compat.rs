//! Camera responses that real clients (curl, browsers, ffmpeg) accept and Heldar must accept too,
//! and the error codes of those it refuses, each from a raw-bytes fake camera over a real TCP
//! socket (`heldar::fakecam::raw`). See docs/compatibility.md.

mod common;

use std::time::{Duration, Instant};

use common::{error_of, spawn_app, spawn_app_with, wait_for, TestApp};
use heldar::app::BuildOptions;
use heldar::fakecam::pattern;
use heldar::fakecam::raw::{RawCamera, Step};
use serde_json::{json, Value};

fn jpeg() -> Vec<u8> {
    pattern::solid_jpeg(64, 48, [30, 160, 90])
}

/// A JPEG with a comment segment holding `FF D9` right after SOI: its end is not the first (or
/// the last) `FF D9` in the bytes.
fn jpeg_with_ffd9_comment() -> Vec<u8> {
    let j = jpeg();
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x06, b'x', 0xFF, 0xD9, b'y'];
    b.extend_from_slice(&j[2..]);
    b
}

fn response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut r = head.as_bytes().to_vec();
    r.extend_from_slice(body);
    r
}

fn ok_jpeg_head(len: usize) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

async fn add(app: &TestApp, id: &str, url: &str, creds: Option<(&str, &str)>) {
    let mut body = json!({"id": id, "snapshot_url": url});
    if let Some((u, p)) = creds {
        body["username"] = json!(u);
        body["password"] = json!(p);
    }
    app.create_camera(body).await;
}

/// The live snapshot must be 200 image/jpeg with exactly `expected`.
async fn assert_frame(app: &TestApp, id: &str, expected: &[u8]) {
    let resp = app.get(&format!("/api/v1/cameras/{id}/snapshot")).await;
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 200, "{id}: {}", String::from_utf8_lossy(&body));
    assert_eq!(ct.as_deref(), Some("image/jpeg"), "{id}");
    assert!(
        body[..] == expected[..],
        "{id}: got {} bytes, expected {} bytes",
        body.len(),
        expected.len()
    );
}

/// The live snapshot's error: status and JSON body.
async fn snapshot_error(app: &TestApp, id: &str) -> (u16, Value) {
    error_of(app.get(&format!("/api/v1/cameras/{id}/snapshot")).await).await
}

#[tokio::test]
async fn bytes_after_the_jpegs_end_are_not_part_of_the_frame() {
    let app = spawn_app().await;
    let j = jpeg();
    let c = jpeg_with_ffd9_comment();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        // Dahua doorbell: an 8-byte `dhav` trailer counted in Content-Length.
        ("dhav", j.clone(), b"dhav\x00\x01\x02\x03".to_vec()),
        ("zeros", j.clone(), vec![0; 64]),
        ("crlf", j.clone(), b"\r\n".to_vec()),
        // A trailer that itself ends in FF D9: the frame still ends at the real EOI.
        ("ffd9-trailer", j.clone(), b"junk\xFF\xD8\xFF\xD9".to_vec()),
        ("ffd9-in-comment", c.clone(), b"dhav1234".to_vec()),
    ];
    let mut cams = Vec::new();
    for (id, frame, trailer) in &cases {
        let body = [frame.as_slice(), trailer].concat();
        let cam = RawCamera::fixed(response(&ok_jpeg_head(body.len()), &body))
            .await
            .unwrap();
        add(&app, id, &cam.url("/snap.jpg"), None).await;
        cams.push(cam);
    }
    for (id, frame, _) in &cases {
        assert_frame(&app, id, frame).await;
    }
    // The stored frame is the JPEG up to EOI too.
    let resp = app
        .client
        .get(app.url("/api/v1/cameras/dhav/snapshot?store=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap()[..], j[..]);
    app.stop().await;
}

#[tokio::test]
async fn leading_junk_before_the_jpeg_is_refused_like_browsers_do() {
    let app = spawn_app().await;
    let body = [&b"\r\n"[..], &jpeg()].concat();
    let cam = RawCamera::fixed(response(&ok_jpeg_head(body.len()), &body))
        .await
        .unwrap();
    add(&app, "junk", &cam.url("/snap.jpg"), None).await;
    let (status, body) = snapshot_error(&app, "junk").await;
    assert_eq!((status, body["code"].as_str()), (502, Some("bad_response")));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no start-of-image marker"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_content_length_larger_than_a_complete_jpeg_still_gives_the_frame() {
    let app = spawn_app().await;
    let j = jpeg();
    // 48 bytes promised and never sent, then the connection closes.
    let closes = RawCamera::fixed(response(&ok_jpeg_head(j.len() + 48), &j))
        .await
        .unwrap();
    // Same, but the camera keeps the connection open.
    let head = ok_jpeg_head(j.len() + 48);
    let jj = j.clone();
    let holds = RawCamera::start(move |_, _| vec![Step::Send(response(&head, &jj)), Step::Hold])
        .await
        .unwrap();
    // Half a JPEG and a close: still bad_response.
    let half = RawCamera::fixed(response(&ok_jpeg_head(j.len()), &j[..j.len() / 2]))
        .await
        .unwrap();
    add(&app, "closes", &closes.url("/s.jpg"), None).await;
    add(&app, "holds", &holds.url("/s.jpg"), None).await;
    add(&app, "half", &half.url("/s.jpg"), None).await;
    assert_frame(&app, "closes", &j).await;
    let started = Instant::now();
    assert_frame(&app, "holds", &j).await;
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    let (status, body) = snapshot_error(&app, "half").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("bad_response")),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("cut off"),
        "{body}"
    );
    app.stop().await;
}

/// Response heads a strict HTTP/1.1 parser refuses and curl, browsers and ffmpeg accept.
fn tolerated_heads(len: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "goahead-date-line",
            format!(
                "HTTP/1.1 200 OK\r\nServer: GoAhead-Webs\r\nSun Nov 29 12:00:00 2026\r\n\
                 Content-Type: image/jpeg\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "bare-lf",
            format!(
                "HTTP/1.1 200 OK\nContent-Type: image/jpeg\nContent-Length: {len}\nConnection: close\n\n"
            ),
        ),
        (
            "space-before-colon",
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type : image/jpeg\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "folded-header",
            format!(
                "HTTP/1.1 200 OK\r\nX-Camera-Info: model=IPC\r\n  firmware=1.2\r\nContent-Type: image/jpeg\r\n\
                 Content-Length: {len}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "no-reason-phrase",
            format!(
                "HTTP/1.1 200\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "http10-until-close",
            "HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n\r\n".to_string(),
        ),
        (
            "lower-case-names",
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
            ),
        ),
        (
            "duplicate-equal-content-length",
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\
                 Content-Length: {len}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "invalid-header-name",
            format!(
                "HTTP/1.1 200 OK\r\nX-Bad[Name]: 1\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
        ),
        (
            "no-content-type",
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"),
        ),
        (
            "control-chars-in-a-value",
            format!(
                "HTTP/1.1 200 OK\r\nX-Debug: \x01\x02\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
        ),
        (
            "latin1-in-a-value",
            format!(
                "HTTP/1.1 200 OK\r\nServer: Cam\u{e9}ra\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
        ),
        (
            "empty-header-name",
            format!(
                "HTTP/1.1 200 OK\r\n: x\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
        ),
        (
            "mixed-crlf-and-lf",
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\nContent-Length: {len}\r\nConnection: close\n\r\n"
            ),
        ),
        (
            "blank-line-before-status",
            format!(
                "\r\nHTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
        ),
        (
            "content-length-list-of-equal-values",
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len}, {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
        ),
        (
            "no-space-after-colon-and-trailing-spaces",
            format!(
                "HTTP/1.1 200 \r\nContent-Type:image/jpeg\r\nContent-Length:{len} \r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "http11-no-length-until-close",
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n".to_string(),
        ),
        (
            "http10-with-length",
            format!("HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n"),
        ),
    ]
}

#[tokio::test]
async fn response_heads_real_clients_tolerate_are_accepted() {
    let app = spawn_app().await;
    let j = jpeg();
    let mut cams = Vec::new();
    let heads = tolerated_heads(j.len());
    for (id, head) in &heads {
        let cam = RawCamera::fixed(response(head, &j)).await.unwrap();
        add(&app, id, &cam.url("/snap.jpg"), None).await;
        cams.push(cam);
    }
    for (id, _) in &heads {
        assert_frame(&app, id, &j).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_response_that_cannot_be_parsed_is_bad_response_not_unreachable() {
    let app = spawn_app().await;
    let j = jpeg();
    let cases = [
        (
            "bad-version",
            "HTTX/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n".to_string(),
        ),
        (
            "bad-status",
            "HTTP/1.1 2x0 OK\r\nContent-Type: image/jpeg\r\n\r\n".to_string(),
        ),
        (
            "bad-length",
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: lots\r\n\r\n"
                .to_string(),
        ),
        (
            "nul-in-a-value",
            "HTTP/1.1 200 OK\r\nServer: Cam\0era\r\nContent-Type: image/jpeg\r\n\r\n".to_string(),
        ),
        (
            "lower-case-version",
            "http/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n".to_string(),
        ),
        (
            "conflicting-lengths",
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Length: 7\r\n\r\n",
                j.len()
            ),
        ),
    ];
    let mut cams = Vec::new();
    for (id, head) in &cases {
        let cam = RawCamera::fixed(response(head, &j)).await.unwrap();
        add(&app, id, &cam.url("/snap.jpg"), None).await;
        cams.push(cam);
    }
    for (id, _) in &cases {
        let (status, body) = snapshot_error(&app, id).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (502, Some("bad_response")),
            "{id}: {body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains("cannot parse"),
            "{id}: {body}"
        );
    }
    app.stop().await;
}

/// An MJPEG stream: the head, then `part` again and again.
fn mjpeg_camera_steps(content_type: &str, part: Vec<u8>, lf: bool) -> Vec<Step> {
    let nl = if lf { "\n" } else { "\r\n" };
    let head = format!(
        "HTTP/1.1 200 OK{nl}Content-Type: {content_type}{nl}Cache-Control: no-cache{nl}{nl}"
    );
    vec![
        Step::Send(head.into_bytes()),
        Step::Repeat(part, Duration::from_millis(40)),
    ]
}

#[tokio::test]
async fn an_mjpeg_stream_gives_its_first_frame_quickly_and_is_closed() {
    // A deadline long enough that waiting for it would show.
    let app = spawn_app_with(
        |c| c.capture_timeout = Duration::from_secs(15),
        BuildOptions::default(),
    )
    .await;
    let j = jpeg();
    let c = jpeg_with_ffd9_comment();
    let part = |delim: &str, headers: &str, frame: &[u8], nl: &str| {
        [
            format!("{delim}{nl}{headers}{nl}").as_bytes(),
            frame,
            nl.as_bytes(),
        ]
        .concat()
    };
    // (camera id, Content-Type, one part, LF line endings, the frame expected)
    type Case = (&'static str, &'static str, Vec<u8>, bool, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            "quoted",
            "multipart/x-mixed-replace; boundary=\"myboundary\"",
            part(
                "--myboundary",
                &format!(
                    "Content-Type: image/jpeg\r\nContent-Length: {}\r\n",
                    j.len()
                ),
                &j,
                "\r\n",
            ),
            false,
            j.clone(),
        ),
        (
            "dashes-in-param",
            "multipart/x-mixed-replace;boundary=--frame",
            part("--frame", "Content-Type: image/jpeg\r\n", &j, "\r\n"),
            false,
            j.clone(),
        ),
        (
            "esp32-lf",
            "multipart/x-mixed-replace;boundary=123456789000000000000987654321",
            part(
                "--123456789000000000000987654321",
                "Content-Type: image/jpeg\nContent-Length: 99999\n",
                &c,
                "\n",
            ),
            true,
            c.clone(),
        ),
        (
            "no-boundary-param",
            "multipart/x-mixed-replace",
            part("--ipcamera", "Content-Type: image/jpeg\r\n", &j, "\r\n"),
            false,
            j.clone(),
        ),
    ];
    let mut cams = Vec::new();
    for (id, ct, p, lf, _) in &cases {
        let (ct, p, lf) = (ct.to_string(), p.clone(), *lf);
        let cam = RawCamera::start(move |_, _| mjpeg_camera_steps(&ct, p.clone(), lf))
            .await
            .unwrap();
        add(&app, id, &cam.url("/video"), None).await;
        cams.push(cam);
    }
    for ((id, _, _, _, frame), cam) in cases.iter().zip(&cams) {
        let started = Instant::now();
        assert_frame(&app, id, frame).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{id}: {:?}",
            started.elapsed()
        );
        // Heldar closed the stream.
        wait_for(
            "the MJPEG connection to close",
            Duration::from_secs(5),
            || async { (cam.open_connections() == 0).then_some(()) },
        )
        .await;
    }
    app.stop().await;
}

/// Verify a Digest `Authorization` against `pass` (any algorithm the header names).
fn digest_valid(head: &str, user: &str, pass: &str, nonce: &str) -> bool {
    let Some(line) = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
    else {
        return false;
    };
    let value = line.split_once(':').unwrap().1.trim();
    let Ok(hdr) = digest_auth::AuthorizationHeader::parse(value) else {
        return false;
    };
    if hdr.username != user || hdr.nonce != nonce {
        return false;
    }
    let ctx = digest_auth::AuthContext::new_with_method(
        user,
        pass,
        &hdr.uri,
        Some(&b""[..]),
        digest_auth::HttpMethod::GET,
    );
    let mut expected = hdr.clone();
    expected.digest(&ctx);
    expected.response == hdr.response
}

/// A camera that sends `challenge_headers` on the first request and checks Digest with `nonce`.
async fn digest_camera(challenge_headers: String, nonce: &'static str) -> RawCamera {
    let j = jpeg();
    RawCamera::start(move |_, head| {
        if digest_valid(head, "admin", "pa ss%word", nonce) {
            vec![Step::Send(response(&ok_jpeg_head(j.len()), &j))]
        } else {
            vec![Step::Send(
                format!(
                    "HTTP/1.1 401 Unauthorized\r\n{challenge_headers}Content-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                )
                .into_bytes(),
            )]
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn digest_challenges_in_every_case_and_spacing_are_answered() {
    let app = spawn_app().await;
    let cases: Vec<(&str, String)> = vec![
        (
            "acti-lower-md5",
            "WWW-Authenticate: Digest realm=\"ACTi\", nonce=\"n0\", algorithm=md5, qop=\"auth\"\r\n"
                .into(),
        ),
        (
            "upper-everything",
            "WWW-Authenticate: DIGEST REALM=\"R\", NONCE=\"n0\", ALGORITHM=MD5, QOP=\"AUTH\"\r\n"
                .into(),
        ),
        (
            "unquoted-spaced",
            "WWW-Authenticate: Digest realm = R , nonce = n0 , qop = auth\r\n".into(),
        ),
        (
            "rfc2069-no-qop",
            "WWW-Authenticate: Digest realm=\"R\", nonce=\"n0\"\r\n".into(),
        ),
        (
            "auth-auth-int-stale",
            "WWW-Authenticate: Digest realm=\"R\", nonce=\"n0\", qop=\"auth,auth-int\", stale=TRUE\r\n"
                .into(),
        ),
        (
            "basic-and-digest-one-header",
            "WWW-Authenticate: Basic realm=\"R\", Digest realm=\"R\", nonce=\"n0\", qop=\"auth\"\r\n"
                .into(),
        ),
        (
            "two-headers-sha256-wins",
            "WWW-Authenticate: Digest realm=\"R\", nonce=\"md5nonce\", algorithm=MD5, qop=\"auth\"\r\n\
             WWW-Authenticate: Digest realm=\"R\", nonce=\"n0\", algorithm=sha-256, qop=\"auth\"\r\n"
                .into(),
        ),
        (
            "md5-sess",
            "WWW-Authenticate: Digest realm=\"R\", nonce=\"n0\", algorithm=MD5-sess, qop=auth\r\n"
                .into(),
        ),
    ];
    let mut cams = Vec::new();
    for (id, headers) in &cases {
        let cam = digest_camera(headers.clone(), "n0").await;
        add(
            &app,
            id,
            &cam.url("/snap.jpg"),
            Some(("admin", "pa ss%word")),
        )
        .await;
        cams.push(cam);
    }
    for ((id, _), cam) in cases.iter().zip(&cams) {
        assert_frame(&app, id, &jpeg()).await;
        assert_eq!(cam.requests().len(), 2, "{id}: one challenge, one answer");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unusable_digest_challenge_is_bad_response_and_no_auth_backoff() {
    let app = spawn_app().await;
    let cam = digest_camera(
        "WWW-Authenticate: Digest realm=\"R\", nonce=\"n0\", algorithm=SHA-1\r\n".into(),
        "n0",
    )
    .await;
    add(
        &app,
        "sha1",
        &cam.url("/snap.jpg"),
        Some(("admin", "pa ss%word")),
    )
    .await;
    let (status, body) = snapshot_error(&app, "sha1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("bad_response")),
        "{body}"
    );
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("Digest challenge") && msg.contains("SHA-1"),
        "{msg}"
    );
    assert!(!msg.contains("pa ss%word"), "{msg}");
    common::camera_in_state(&app, "sha1", "failing").await;
    // No credentials were sent.
    assert_eq!(cam.requests().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn non_jpeg_answers_name_their_content_type_and_a_short_masked_excerpt() {
    let app = spawn_app().await;
    let empty = RawCamera::fixed(ok_jpeg_head(0).into_bytes())
        .await
        .unwrap();
    let xml = "<?xml version=\"1.0\"?>\r\n<ResponseStatus><statusString>Device Busy</statusString></ResponseStatus>";
    let busy = RawCamera::fixed(response(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            xml.len()
        ),
        xml.as_bytes(),
    ))
    .await
    .unwrap();
    let long: String = format!("{{\"error\":\"\x07{}\"}}", "secret-ish ".repeat(100));
    let chatty = RawCamera::fixed(response(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            long.len()
        ),
        long.as_bytes(),
    ))
    .await
    .unwrap();
    add(&app, "empty", &empty.url("/s.jpg"), None).await;
    add(&app, "busy", &busy.url("/s.jpg"), Some(("admin", "Device"))).await;
    add(&app, "chatty", &chatty.url("/s.jpg"), None).await;

    let (status, body) = snapshot_error(&app, "empty").await;
    assert_eq!((status, body["code"].as_str()), (502, Some("bad_response")));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("empty body (0 bytes)"),
        "{body}"
    );

    let (_, body) = snapshot_error(&app, "busy").await;
    let msg = body["error"].as_str().unwrap();
    assert_eq!(body["code"], "bad_response");
    assert!(msg.contains("application/xml"), "{msg}");
    // The excerpt is there, with the camera's password (here "Device") masked.
    assert!(
        msg.contains("<statusString>*** Busy</statusString>"),
        "{msg}"
    );

    let (_, body) = snapshot_error(&app, "chatty").await;
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("application/json"), "{msg}");
    let quoted = msg.split_once(": \"").map(|(_, q)| q).unwrap_or("");
    assert!(
        quoted.len() <= 210,
        "excerpt of {} bytes: {msg}",
        quoted.len()
    );
    assert!(!msg.contains('\x07'), "{msg:?}");
    app.stop().await;
}

#[tokio::test]
async fn cloud_metadata_hosts_are_refused_as_camera_hosts() {
    let app = spawn_app().await;
    for (id, url) in [
        ("aws", "http://169.254.169.254/latest/meta-data/iam/"),
        ("aws6", "http://[fd00:ec2::254]/latest/meta-data/"),
        ("mapped", "http://[::ffff:169.254.169.254]/"),
        ("alibaba", "http://100.100.100.200/latest/meta-data/"),
    ] {
        add(&app, id, url, None).await;
        let (status, body) = snapshot_error(&app, id).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("forbidden_host")),
            "{id}: {body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains("metadata"),
            "{body}"
        );
    }
    // A redirect to one is refused too.
    let redirect = RawCamera::fixed(
        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    )
    .await
    .unwrap();
    add(&app, "redir", &redirect.url("/s.jpg"), None).await;
    let (status, body) = snapshot_error(&app, "redir").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("forbidden_host")),
        "{body}"
    );
    // RTSP too, before ffmpeg is started.
    app.create_camera(
        json!({"id": "rtspmeta", "main_stream_url": "rtsp://169.254.169.254/stream"}),
    )
    .await;
    let (status, body) = snapshot_error(&app, "rtspmeta").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("forbidden_host")),
        "{body}"
    );
    app.stop().await;
}

/// `openssl s_server` with a fresh self-signed certificate, serving HTTPS on a free port.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server(end_entity: bool) -> Option<TlsServer> {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg("/CN=127.0.0.1")
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(if end_entity {
            &["-addext", "basicConstraints=critical,CA:FALSE"][..]
        } else {
            &[][..]
        })
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    assert!(made.success(), "openssl req failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(TlsServer {
        child,
        port,
        _dir: dir,
    })
}

#[tokio::test]
async fn a_tls_failure_is_its_own_code_naming_the_certificate_problem() {
    let app = spawn_app().await;
    // A self-signed end-entity certificate, and what `openssl req -x509` makes by default (a CA
    // certificate used as the server's own).
    for (id, end_entity) in [("selfsigned", true), ("selfsigned-ca", false)] {
        let server = tls_server(end_entity).expect("openssl is needed for this test");
        wait_for(
            "openssl s_server to listen",
            Duration::from_secs(10),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
        add(
            &app,
            id,
            &format!("https://127.0.0.1:{}/snap.jpg", server.port),
            None,
        )
        .await;
        let (status, body) = snapshot_error(&app, id).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (502, Some("tls")),
            "{body}"
        );
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains("unknown issuer"), "{body}");
        assert!(msg.contains("self-signed"), "{body}");
    }
    // Plain HTTP on an https:// URL: the server answers the ClientHello with a 400.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = plain.accept().await {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    add(&app, "plain", &format!("https://{addr}/snap.jpg"), None).await;
    let (status, body) = snapshot_error(&app, "plain").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("tls")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did not answer with TLS"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_error_status_quotes_what_the_camera_said() {
    let app = spawn_app().await;
    let xml = "<?xml version=\"1.0\"?><ResponseStatus><statusString>Device Busy</statusString></ResponseStatus>";
    let busy = RawCamera::fixed(response(
        &format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            xml.len()
        ),
        xml.as_bytes(),
    ))
    .await
    .unwrap();
    add(&app, "busy503", &busy.url("/s.jpg"), None).await;
    let (status, body) = snapshot_error(&app, "busy503").await;
    assert_eq!((status, body["code"].as_str()), (502, Some("bad_response")));
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("HTTP 503"), "{msg}");
    assert!(msg.contains("Device Busy"), "{msg}");
    app.stop().await;
}

#[tokio::test]
async fn a_stale_nonce_is_answered_once_more_and_wrong_credentials_stay_auth_failed() {
    let app = spawn_app().await;
    let j = jpeg();
    let challenge = |nonce: &str, stale: bool| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"R\", nonce=\"{nonce}\", \
             qop=\"auth\"{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            if stale { ", stale=true" } else { "" }
        )
        .into_bytes()
    };
    // The first nonce expires between the challenge and the answer: the camera says stale.
    let cam = RawCamera::start(move |_, head| {
        if digest_valid(head, "admin", "pa ss%word", "fresh") {
            vec![Step::Send(response(&ok_jpeg_head(j.len()), &j))]
        } else if digest_valid(head, "admin", "pa ss%word", "old") {
            vec![Step::Send(challenge("fresh", true))]
        } else {
            vec![Step::Send(challenge("old", false))]
        }
    })
    .await
    .unwrap();
    add(
        &app,
        "stale",
        &cam.url("/s.jpg"),
        Some(("admin", "pa ss%word")),
    )
    .await;
    add(&app, "wrong", &cam.url("/s.jpg"), Some(("admin", "nope"))).await;
    assert_frame(&app, "stale", &jpeg()).await;
    assert_eq!(cam.requests().len(), 3);
    let (status, body) = snapshot_error(&app, "wrong").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("auth_failed")),
        "{body}"
    );
    // A wrong password is not retried: one challenge, one answer.
    assert_eq!(cam.requests().len(), 5);
    app.stop().await;
}

#[tokio::test]
async fn special_characters_in_http_credentials_reach_the_camera() {
    use heldar::fakecam::{FakeAuth, FakeCamera, FrameSupply};
    let app = spawn_app().await;
    let frame = jpeg();
    let specials = [
        "@", "#", "%", ":", "/", "?", "&", "=", "+", " ", "!", "'", "\"", "é", "%25", "\\",
    ];
    let mut cams = Vec::new();
    for (i, c) in specials.iter().enumerate() {
        // Basic cannot carry `:` in a user name; Digest user names stay ASCII (a non-ASCII one
        // needs RFC 7616's `username*`, which neither side here speaks).
        let user = if *c == ":" || *c == "é" {
            format!("user{i}")
        } else {
            format!("u{c}{i}")
        };
        let pass = format!("ab{c}cd{c}{i}");
        for (kind, auth) in [
            (
                "basic",
                FakeAuth::Basic {
                    user: user.clone(),
                    pass: pass.clone(),
                },
            ),
            (
                "digest",
                FakeAuth::Digest {
                    user: user.clone(),
                    pass: pass.clone(),
                },
            ),
        ] {
            let cam = FakeCamera::start(auth, FrameSupply::Static(frame.clone().into()))
                .await
                .unwrap();
            let id = format!("{kind}{i}");
            add(&app, &id, &cam.snapshot_url(), Some((&user, &pass))).await;
            cams.push((id, user.clone(), pass.clone(), cam));
        }
    }
    let mut failures = Vec::new();
    for (id, user, pass, _) in &cams {
        let resp = app.get(&format!("/api/v1/cameras/{id}/snapshot")).await;
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        if status != 200 || body[..] != frame[..] {
            failures.push(format!(
                "{id} {user:?}/{pass:?}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    app.stop().await;
}
