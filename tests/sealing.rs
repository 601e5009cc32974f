//! Camera credentials sealed at rest (docs/design.md §11): not in the database file, a key file made
//! 0600, a missing or wrong key stops start-up with a clear error, and a database from before
//! sealing is upgraded in place and keeps working.

mod common;

use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use common::{heldar_cmd, spawn_app_with};
use heldar::app::BuildOptions;
use heldar::fakecam::{pattern, FakeAuth, FakeCamera, FrameSupply};
use serde_json::json;

const PASSWORD: &str = "Zq7-vault-PASS!";

fn frame() -> FrameSupply {
    FrameSupply::Static(Bytes::from(pattern::solid_jpeg(64, 48, [10, 200, 10])))
}

fn digest_cam_auth() -> FakeAuth {
    FakeAuth::Digest {
        user: "admin".into(),
        pass: PASSWORD.into(),
    }
}

/// Every byte of the database, its WAL and shared memory: the password must be in none.
fn database_bytes(data: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["heldar.db", "heldar.db-wal", "heldar.db-shm"] {
        if let Ok(b) = std::fs::read(data.join(name)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn passwords_and_credential_urls_never_reach_the_database_file_in_clear() {
    let cam = FakeCamera::start(digest_cam_auth(), frame()).await.unwrap();
    let app = spawn_app_with(|_| {}, BuildOptions::default()).await;
    let data = app.dir.path().to_path_buf();
    app.create_camera(
        json!({"id": "vault", "username": "admin", "password": PASSWORD,
        "snapshot_url": cam.snapshot_url()}),
    )
    .await;
    let with_url = cam
        .snapshot_url()
        .replace("http://", &format!("http://admin:{PASSWORD}@"));
    app.create_camera(json!({"id": "inurl", "snapshot_url": with_url,
        "main_stream_url": format!("rtsp://admin:{PASSWORD}@127.0.0.1:9/s")}))
        .await;
    // Both capture: the sealed credentials open again for use.
    for id in ["vault", "inurl"] {
        let r = app.get(&format!("/api/v1/cameras/{id}/snapshot")).await;
        assert_eq!(r.status(), 200, "{id}");
    }
    let key = data.join("secret.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    let bytes = database_bytes(&data);
    assert!(contains(&bytes, "sealed:v1:"));
    assert!(
        !contains(&bytes, PASSWORD),
        "a password is in the database file in clear"
    );
    app.stop().await;
    assert!(!contains(&database_bytes(&data), PASSWORD));
}

fn serve_fails(dir: &std::path::Path) -> String {
    let out = heldar_cmd(dir)
        .args(["serve", "--api-port", "0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "start-up should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn a_missing_or_wrong_key_stops_start_up_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // First start: creates the key and seals a camera.
    {
        let app =
            spawn_app_with(|c| *c = common::test_config(&data), BuildOptions::default()).await;
        app.create_camera(
            json!({"id": "c", "snapshot_url": "http://127.0.0.1:9/x.jpg",
            "password": PASSWORD, "username": "u"}),
        )
        .await;
        app.stop().await;
    }
    let key = data.join("secret.key");
    let good = std::fs::read_to_string(&key).unwrap();

    // Missing.
    std::fs::remove_file(&key).unwrap();
    let err = serve_fails(dir.path());
    assert!(
        err.contains("HELDAR_SECRET_KEY_FILE") && err.contains("missing"),
        "{err}"
    );
    assert!(
        !key.exists(),
        "a new key must not be made for a sealed database"
    );
    // Wrong (another valid key).
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let err = serve_fails(dir.path());
    assert!(
        err.contains("not the key this database was sealed with"),
        "{err}"
    );
    // Malformed.
    std::fs::write(&key, "not a key").unwrap();
    let err = serve_fails(dir.path());
    assert!(err.contains("64 hex digits"), "{err}");
    assert!(!err.contains(PASSWORD) && !err.contains(good.trim()));

    // The right key again: the camera and its password are back.
    std::fs::write(&key, &good).unwrap();
    let app = spawn_app_with(|c| *c = common::test_config(&data), BuildOptions::default()).await;
    let v: serde_json::Value = app.get("/api/v1/cameras/c").await.json().await.unwrap();
    assert_eq!(v["has_password"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_database_from_before_sealing_is_upgraded_in_place() {
    let cam = FakeCamera::start(digest_cam_auth(), frame()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // An old database: the camera row written with its password and URL in plain text, no key.
    {
        let url = format!("sqlite://{}", data.join("heldar.db").display());
        let pool = heldar::db::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO cameras (id, name, vendor, address, rtsp_port, http_port, username, \
             password, snapshot_url, snapshot_source, created_at, updated_at) VALUES \
             ('old', 'old', 'generic', '', 554, 80, 'admin', ?, ?, 'auto', \
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        )
        .bind(PASSWORD)
        .bind(cam.snapshot_url())
        .execute(pool.sqlite().unwrap())
        .await
        .unwrap();
        pool.close().await;
    }
    assert!(contains(&database_bytes(&data), PASSWORD));

    let app = spawn_app_with(|c| *c = common::test_config(&data), BuildOptions::default()).await;
    let (pw, url): (String, String) =
        sqlx::query_as("SELECT password, snapshot_url FROM cameras WHERE id = 'old'")
            .fetch_one(app.state.ops.db.sqlite().unwrap())
            .await
            .unwrap();
    assert!(
        pw.starts_with("sealed:v1:") && url.starts_with("sealed:v1:"),
        "{pw} {url}"
    );
    // It still captures with its (now sealed) password.
    let r = app.get("/api/v1/cameras/old/snapshot").await;
    assert_eq!(r.status(), 200);
    assert!(cam.hits() >= 1);
    app.stop().await;
    sqlx_checkpoint(&data).await;
    assert!(
        !contains(
            &std::fs::read(data.join("heldar.db")).unwrap(),
            &format!("'{PASSWORD}'")
        ),
        "the plaintext row survived the upgrade"
    );
}

/// Fold the WAL back into the main file, so what is left on disk is what a backup would copy.
async fn sqlx_checkpoint(data: &std::path::Path) {
    let url = format!("sqlite://{}", data.join("heldar.db").display());
    let pool = heldar::db::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool.sqlite().unwrap())
        .await
        .unwrap();
    sqlx::query("VACUUM")
        .execute(pool.sqlite().unwrap())
        .await
        .unwrap();
    pool.close().await;
}
