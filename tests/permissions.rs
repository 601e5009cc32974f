//! Owner-only files: a data dir Heldar creates is 0700, the database and its -wal/-shm files are
//! 0600 (like secret.key); an existing world-readable data dir is left as it is, with a WARN, and
//! a world-readable database left by an older Heldar is tightened.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{heldar_cmd, spawn_app_with, ServerProcess};
use heldar::app::BuildOptions;
use serde_json::json;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_dir_and_the_database_files_are_owner_only() {
    let root = tempfile::tempdir().unwrap();
    // Under a world-readable folder, with the umask services usually have.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = root.path().join("var/heldar");
    let d = data.clone();
    let app = spawn_app_with(
        move |c| {
            c.data_dir = d.clone();
            c.snapshots_dir = d.join("snapshots");
            c.database_url = format!("sqlite://{}", d.join("heldar.db").display());
            c.secret_key_file = d.join("secret.key");
        },
        BuildOptions::default(),
    )
    .await;
    // Some writes, so the WAL is in use.
    app.create_camera(json!({"id": "cam", "snapshot_url": "http://127.0.0.1:9/x.jpg"}))
        .await;
    assert_eq!(
        mode(root.path()),
        0o755,
        "a folder Heldar did not create is untouched"
    );
    assert_eq!(mode(&root.path().join("var")), 0o700);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("snapshots")), 0o700);
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    for f in ["heldar.db", "heldar.db-wal", "heldar.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    app.stop().await;
}

#[test]
fn an_existing_world_readable_data_dir_is_warned_about_not_changed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A database left world-readable by an older Heldar.
    let db = data.join("heldar.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut cmd = heldar_cmd(root.path());
    cmd.arg("serve");
    let server = ServerProcess::start(cmd);
    let (status, logs) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{logs:?}");
    assert_eq!(
        mode(&data),
        0o755,
        "Heldar did not create it, so it keeps its mode"
    );
    let warn = logs
        .iter()
        .find(|l| l.contains("WARN") && l.contains("can be read by other users"))
        .unwrap_or_else(|| panic!("no warning about the data dir: {logs:?}"));
    assert!(warn.contains("chmod 700"), "{warn}");
    assert_eq!(mode(&db), 0o600);
    assert!(logs.iter().any(|l| l.contains("now mode 600")), "{logs:?}");
    assert_eq!(mode(&data.join("secret.key")), 0o600);
}
