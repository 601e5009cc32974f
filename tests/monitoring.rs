//! Monitoring: per-camera `up` and last-success gauges, build info, series of a deleted camera
//! gone at once — and the example alert rules and Grafana dashboard in docs/monitoring only use
//! series that a real Heldar's /metrics exports (checked against a scrape of the running app;
//! `promtool check rules` too when promtool is installed).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::{spawn_app, wait_for};
use heldar::fakecam::{pattern, Behavior, FakeAuth, FakeCamera, FrameSupply};
use serde_json::{json, Value};

/// The sample names a text exposition can contain, from its `# TYPE` lines.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        for s in suffixes {
            names.insert(format!("{name}{s}"));
        }
    }
    names
}

/// Every `heldar_…` identifier in a PromQL expression.
fn heldar_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("heldar_") {
        let start = i + pos;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

/// Every string under an `expr` key, anywhere in the JSON.
fn exprs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs_in(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs_in(v, out)),
        _ => {}
    }
}

/// The value of the series `name{labels}` exactly as written in the exposition.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_gauges_build_info_deleted_cameras_and_the_shipped_rules_and_dashboard() {
    let app = spawn_app().await;
    let frame = Bytes::from(pattern::sized_jpeg(10));
    let good = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame.clone()))
        .await
        .unwrap();
    let bad = FakeCamera::start(FakeAuth::None, FrameSupply::Static(frame))
        .await
        .unwrap();
    bad.set_behavior(Behavior::Status(500));
    app.create_camera(json!({"id": "cam-good", "snapshot_url": good.snapshot_url()}))
        .await;
    app.create_camera(json!({"id": "cam-bad", "snapshot_url": bad.snapshot_url()}))
        .await;
    let before = chrono::Utc::now().timestamp() as f64;
    assert_eq!(
        app.get("/api/v1/cameras/cam-good/snapshot").await.status(),
        200
    );
    assert!(!app
        .get("/api/v1/cameras/cam-bad/snapshot")
        .await
        .status()
        .is_success());
    let after = chrono::Utc::now().timestamp() as f64 + 1.0;

    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        series(&text, r#"heldar_camera_up{camera="cam-good"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(&text, r#"heldar_camera_up{camera="cam-bad"}"#),
        Some(0.0)
    );
    let last = series(
        &text,
        r#"heldar_camera_last_success_timestamp_seconds{camera="cam-good"}"#,
    )
    .expect("a last-success time for the good camera");
    assert!(
        last >= before - 1.0 && last <= after,
        "{last} not in {before}..{after}"
    );
    assert!(
        !text.contains(r#"heldar_camera_last_success_timestamp_seconds{camera="cam-bad"}"#),
        "a camera that never succeeded has no last-success time"
    );
    let build = text
        .lines()
        .find(|l| l.starts_with("heldar_build_info{"))
        .expect("heldar_build_info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.ends_with(" 1"),
        "{build}"
    );
    assert!(series(&text, "heldar_start_time_seconds").is_some_and(|t| t <= after));

    // Recover: the bad camera goes up once a capture succeeds.
    bad.set_behavior(Behavior::Ok);
    assert_eq!(
        app.get("/api/v1/cameras/cam-bad/snapshot").await.status(),
        200
    );
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        series(&text, r#"heldar_camera_up{camera="cam-bad"}"#),
        Some(1.0)
    );

    // Every series the shipped alert rules and dashboard use is exported.
    let exported = exported_names(&text);
    let root = env!("CARGO_MANIFEST_DIR");
    let rules_path = format!("{root}/docs/monitoring/heldar-alerts.yml");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&rules_path).unwrap()).unwrap();
    let mut rule_exprs = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name} has a summary"
            );
            rule_exprs.push(rule["expr"].as_str().expect("expr").to_string());
        }
    }
    assert!(rule_exprs.len() >= 5, "{rule_exprs:?}");
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/docs/monitoring/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    assert!(dash["panels"].as_array().is_some_and(|p| p.len() >= 5));
    let mut dash_exprs = Vec::new();
    exprs_in(&dash, &mut dash_exprs);
    assert!(dash_exprs.len() >= 5);
    let mut used = BTreeSet::new();
    for e in rule_exprs.iter().chain(&dash_exprs) {
        for n in heldar_names(e) {
            assert!(
                exported.contains(&n),
                "`{n}` in `{e}` is not exported by /metrics; exported: {exported:?}"
            );
            used.insert(n);
        }
    }
    for must in [
        "heldar_camera_up",
        "heldar_camera_last_success_timestamp_seconds",
        "heldar_store_failures_total",
        "heldar_disk_free_bytes",
    ] {
        assert!(
            used.contains(must),
            "{must} is used by the rules or the dashboard"
        );
    }
    match std::process::Command::new("promtool")
        .args(["check", "rules", &rules_path])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("skipping `promtool check rules`: promtool is not installed ({e})"),
    }

    // Deleting a camera drops its series at once; the other camera's stay.
    assert_eq!(app.delete("/api/v1/cameras/cam-good").await.status(), 204);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !text.contains("cam-good"),
        "deleted camera still exported:\n{text}"
    );
    assert!(text.contains(r#"heldar_camera_up{camera="cam-bad"}"#));
    assert!(text.contains(r#"heldar_captures_total{camera="cam-bad",result="ok"}"#));

    // A camera re-created under the same id is exported again after its first capture.
    app.create_camera(json!({"id": "cam-good", "snapshot_url": good.snapshot_url()}))
        .await;
    wait_for(
        "the re-created camera's capture",
        Duration::from_secs(10),
        || async {
            app.get("/api/v1/cameras/cam-good/snapshot")
                .await
                .status()
                .is_success()
                .then_some(())
        },
    )
    .await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        series(&text, r#"heldar_camera_up{camera="cam-good"}"#),
        Some(1.0)
    );
    app.stop().await;
}

#[test]
fn promql_names_are_found() {
    assert_eq!(
        heldar_names("time() - heldar_a_b{x=\"y\"} > 1 and rate(heldar_c_total[5m])"),
        vec!["heldar_a_b", "heldar_c_total"]
    );
    assert!(heldar_names("up{job=\"heldar\"} == 0").is_empty());
}
