//! Packaging: the systemd unit in dist/ verifies with `systemd-analyze` and keeps its sandbox;
//! Cargo.toml's `rust-version` is the real minimum of the locked dependencies. (Building and
//! installing the Debian package is scripts/test-deb, which scripts/test runs as root.)

use std::process::Command;

const UNIT: &str = include_str!("../dist/heldar.service");

#[test]
fn the_unit_keeps_its_sandbox_and_file_limit() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    for must in [
        "User=heldar",
        "ExecStart=/usr/bin/heldar serve",
        "EnvironmentFile=-/etc/default/heldar",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/heldar",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(lines.contains(&must), "dist/heldar.service lacks `{must}`");
    }
    let nofile: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE")
        .parse()
        .unwrap();
    assert!(nofile >= 65_536, "{nofile}");
}

#[test]
fn the_unit_verifies_with_systemd_analyze() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: systemd-analyze is not installed (scripts/test installs `systemd`)");
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("heldar.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/heldar", env!("CARGO_BIN_EXE_heldar")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
    // The sandbox scores "OK" (under 3.0 of 10) in systemd's own exposure rating.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=30", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        text.lines().last().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn rust_version_is_the_minimum_the_dependencies_need() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let declared = version(env!("CARGO_PKG_RUST_VERSION"));
    let mut newest = (vec![0], String::new());
    for p in meta["packages"].as_array().unwrap() {
        if p["name"] == "heldar" {
            continue;
        }
        if let Some(rv) = p["rust_version"].as_str() {
            let v = version(rv);
            if v > newest.0 {
                newest = (v, format!("{} {}", p["name"], p["version"]));
            }
        }
    }
    let mut need = newest.0.clone();
    need.resize(2, 0);
    let mut have = declared.clone();
    have.resize(2, 0);
    assert_eq!(
        have[..2],
        need[..2],
        "rust-version {:?}, but {} needs {:?}",
        declared,
        newest.1,
        newest.0
    );
}
