//! The webhook subscription API on its own (no receiver, no deliveries; tests/webhooks.rs has
//! those): what a PATCH does with `null`, and the times a create answers with.

mod common;

use common::{error_of, spawn_app, TestApp};
use serde_json::{json, Value};

async fn hook(app: &TestApp) -> Value {
    app.create_camera(json!({"id": "gate", "snapshot_url": "http://127.0.0.1:9/x.jpg"}))
        .await;
    let resp = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["frame.stored"],
                    "camera_id": "gate"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// `null` clears a field that can be empty (`camera_id`: every camera) and is a 422 naming the
/// field for one that cannot (`url`, `events`, `secret`, `enabled`), never a silent no-op.
#[tokio::test]
async fn null_clears_camera_id_and_is_refused_for_fields_that_cannot_be_empty() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());

    for field in ["url", "events", "secret", "enabled"] {
        let (status, e) = error_of(app.patch_json(&path, &json!({ field: null })).await).await;
        assert_eq!(status, 422, "{field}: {e}");
        assert_eq!(e["field"], field, "{e}");
        assert!(
            e["error"].as_str().unwrap().contains("null cannot clear"),
            "{e}"
        );
    }
    let unchanged: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(unchanged["url"], "http://127.0.0.1:9/hook");
    assert_eq!(unchanged["enabled"], true);
    assert_eq!(unchanged["camera_id"], "gate");

    let resp = app.patch_json(&path, &json!({"camera_id": null})).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["camera_id"], Value::Null, "null: every camera: {v}");
    let v: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(v["camera_id"], Value::Null, "{v}");
    app.stop().await;
}

/// A create's and a change's answer carry the times a later GET reads back: milliseconds at
/// most, like every time in the API, not the clock's nanoseconds.
#[tokio::test]
async fn created_and_updated_times_are_the_ones_a_get_reads_back() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    let fraction = |t: &Value| -> usize {
        let t = t.as_str().unwrap();
        assert!(t.ends_with('Z'), "{t}");
        t.split_once('.').map_or(0, |(_, f)| f.len() - 1)
    };
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert!(fraction(&created["created_at"]) <= 3, "{created}");
    assert_eq!(created["created_at"], got["created_at"]);
    assert_eq!(created["updated_at"], got["updated_at"]);

    let patched: Value = app
        .patch_json(&path, &json!({"enabled": false}))
        .await
        .json()
        .await
        .unwrap();
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert!(fraction(&patched["updated_at"]) <= 3, "{patched}");
    assert_eq!(patched["updated_at"], got["updated_at"]);
    app.stop().await;
}
