//! Topic names and payloads of the MQTT service: the per-camera topics, Heldar's availability
//! topic, and Home Assistant's MQTT discovery documents (one `camera`, two `sensor`s and one
//! `button` per camera, as HA's MQTT integration documents them).
//!
//! Pure functions of the settings and a camera: no I/O, so the payloads are unit-tested here and
//! against a real broker in tests/mqtt.rs. What it does not own: when anything is published
//! (`services::mqtt`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::MqttConfig;
use crate::models::{CameraId, CameraState};

/// `<prefix>/status`: `online` while Heldar is connected, `offline` (its last will, or said on
/// a clean stop) otherwise. Retained.
pub fn status(cfg: &MqttConfig) -> String {
    format!("{}/status", cfg.prefix)
}

/// `<prefix>/<camera>/snapshot`: the newest stored frame's JPEG. Retained.
pub fn snapshot(cfg: &MqttConfig, camera: &CameraId) -> String {
    format!("{}/{camera}/snapshot", cfg.prefix)
}

/// `<prefix>/<camera>/events`: each event about the camera, JSON. Not retained.
pub fn events(cfg: &MqttConfig, camera: &CameraId) -> String {
    format!("{}/{camera}/events", cfg.prefix)
}

/// `<prefix>/<camera>/state`: the camera's [`CameraDoc`], JSON. Retained.
pub fn state(cfg: &MqttConfig, camera: &CameraId) -> String {
    format!("{}/{camera}/state", cfg.prefix)
}

/// `<prefix>/<camera>/capture`: where a message asks for a still now (Heldar subscribes).
pub fn capture(cfg: &MqttConfig, camera: &CameraId) -> String {
    format!("{}/{camera}/capture", cfg.prefix)
}

/// The subscription that covers every camera's capture topic.
pub fn capture_filter(cfg: &MqttConfig) -> String {
    format!("{}/+/capture", cfg.prefix)
}

/// The camera a capture topic names, if `topic` is one (`None` for anything else, a camera id
/// that is not a slug included).
pub fn camera_of_capture(cfg: &MqttConfig, topic: &str) -> Option<Result<CameraId, String>> {
    let rest = topic.strip_prefix(&cfg.prefix)?.strip_prefix('/')?;
    let cam = rest.strip_suffix("/capture")?;
    if cam.contains('/') {
        return None;
    }
    Some(CameraId::parse(cam))
}

/// What `<prefix>/<camera>/state` says about a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraDoc {
    pub camera: CameraId,
    /// The camera's display name.
    pub name: String,
    /// `unknown`, `online`, `failing` or `auth_failed`, as in the API.
    pub state: CameraState,
    /// The last failure, credentials masked; `null` once a capture succeeds.
    pub last_error: Option<String>,
    /// When the newest stored frame was taken (RFC 3339, UTC); `null` while there is none.
    pub last_frame_at: Option<DateTime<Utc>>,
    /// `vendor` of the camera (HA's device model).
    pub vendor: String,
}

/// The four discovery config topics of a camera: camera, state sensor, last-capture sensor,
/// snapshot button. `None` when discovery is off.
pub fn discovery_topics(cfg: &MqttConfig, camera: &CameraId) -> Option<[String; 4]> {
    let disc = cfg.discovery_prefix.as_deref()?;
    let obj = object_id(cfg, camera);
    Some([
        format!("{disc}/camera/{obj}/config"),
        format!("{disc}/sensor/{obj}_state/config"),
        format!("{disc}/sensor/{obj}_last_capture/config"),
        format!("{disc}/button/{obj}_snapshot/config"),
    ])
}

/// `<node>_<camera>`: the discovery object id and the stem of every unique_id, with the node
/// (the client id) reduced to the characters HA allows in an object id.
pub fn object_id(cfg: &MqttConfig, camera: &CameraId) -> String {
    let node: String = cfg
        .client_id
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                true => c,
                false => '_',
            },
        )
        .collect();
    format!("{node}_{camera}")
}

/// The discovery documents for `doc`'s camera, in the order of [`discovery_topics`]. Every one
/// names the same device (one HA device per camera), Heldar's availability topic, and a
/// unique_id made of the node and camera id, so a rename changes names, never ids.
pub fn discovery_payloads(cfg: &MqttConfig, doc: &CameraDoc) -> [Value; 4] {
    let obj = object_id(cfg, &doc.camera);
    let cam = &doc.camera;
    let device = json!({
        "identifiers": [format!("heldar_{obj}")],
        "name": doc.name,
        "manufacturer": "Heldar",
        "model": doc.vendor,
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let origin = json!({ "name": "Heldar", "sw_version": env!("CARGO_PKG_VERSION") });
    let common = |unique: &str| {
        json!({
            "unique_id": format!("heldar_{obj}_{unique}"),
            "availability_topic": status(cfg),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": origin,
        })
    };
    let with = |mut base: Value, extra: Value| {
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base
    };
    [
        // The camera's image: the retained JPEG of its newest frame. `name: null` makes the
        // entity take the device's name (the camera's), HA's convention for a device's main
        // feature.
        with(
            common("camera"),
            json!({ "name": null, "topic": snapshot(cfg, cam) }),
        ),
        with(
            common("state"),
            json!({
                "name": "State",
                "state_topic": state(cfg, cam),
                "value_template": "{{ value_json.state }}",
                "json_attributes_topic": state(cfg, cam),
                "icon": "mdi:cctv",
            }),
        ),
        with(
            common("last_capture"),
            json!({
                "name": "Last capture",
                "state_topic": state(cfg, cam),
                "device_class": "timestamp",
                "value_template": "{{ value_json.last_frame_at }}",
            }),
        ),
        with(
            common("snapshot"),
            json!({
                "name": "Take snapshot",
                "command_topic": capture(cfg, cam),
                "payload_press": "{\"store\": true}",
                "icon": "mdi:camera",
            }),
        ),
    ]
}

/// A capture request (the payload of `<prefix>/<camera>/capture`): empty means keep it, no tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    #[serde(default = "yes")]
    pub store: bool,
    #[serde(default)]
    pub tag: Option<String>,
}

fn yes() -> bool {
    true
}

/// Read a capture request; the error says what is wrong with it (for the log).
pub fn parse_capture(payload: &[u8]) -> Result<CaptureRequest, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "the payload is not UTF-8".to_string())?;
    let req = match text.trim() {
        "" => CaptureRequest {
            store: true,
            tag: None,
        },
        t => serde_json::from_str::<CaptureRequest>(t).map_err(|e| {
            format!(
                "the payload must be empty or JSON like {{\"store\": true, \"tag\": \"doorbell\"}} ({e})"
            )
        })?,
    };
    if let Some(t) = &req.tag {
        crate::models::check_tag(t)?;
        if !req.store {
            return Err("a tag needs \"store\": true: only a kept frame carries a tag".into());
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MqttConfig {
        MqttConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            tls: false,
            ca_file: None,
            username: None,
            password: None,
            client_id: "heldar-box.lan".into(),
            prefix: "home/heldar".into(),
            discovery_prefix: Some("homeassistant".into()),
        }
    }

    #[test]
    fn capture_topics_name_their_camera_and_nothing_else_matches() {
        let c = cfg();
        let gate = CameraId::parse("gate").unwrap();
        assert_eq!(capture(&c, &gate), "home/heldar/gate/capture");
        assert_eq!(
            camera_of_capture(&c, "home/heldar/gate/capture"),
            Some(Ok(gate))
        );
        assert!(matches!(
            camera_of_capture(&c, "home/heldar/Gate!/capture"),
            Some(Err(_))
        ));
        assert_eq!(camera_of_capture(&c, "home/heldar/gate/snapshot"), None);
        assert_eq!(camera_of_capture(&c, "other/gate/capture"), None);
        assert_eq!(camera_of_capture(&c, "home/heldar/a/b/capture"), None);
    }

    #[test]
    fn discovery_ids_are_stable_and_topics_consistent() {
        let c = cfg();
        let doc = CameraDoc {
            camera: CameraId::parse("gate").unwrap(),
            name: "Front gate".into(),
            state: CameraState::Online,
            last_error: None,
            last_frame_at: None,
            vendor: "hikvision".into(),
        };
        let topics = discovery_topics(&c, &doc.camera).unwrap();
        assert_eq!(topics[0], "homeassistant/camera/heldar-box_lan_gate/config");
        let p = discovery_payloads(&c, &doc);
        assert_eq!(p[0]["topic"], "home/heldar/gate/snapshot");
        assert_eq!(p[3]["command_topic"], "home/heldar/gate/capture");
        let renamed = CameraDoc {
            name: "Gate".into(),
            ..doc.clone()
        };
        let q = discovery_payloads(&c, &renamed);
        for (a, b) in p.iter().zip(&q) {
            assert_eq!(a["unique_id"], b["unique_id"]);
            assert_eq!(a["availability_topic"], "home/heldar/status");
        }
        assert_eq!(q[1]["device"]["name"], "Gate");
        let off = MqttConfig {
            discovery_prefix: None,
            ..c
        };
        assert!(discovery_topics(&off, &doc.camera).is_none());
    }

    #[test]
    fn capture_payloads_default_to_keep_and_refuse_what_cannot_be_done() {
        assert_eq!(
            parse_capture(b"").unwrap(),
            CaptureRequest {
                store: true,
                tag: None
            }
        );
        let r = parse_capture(br#"{"tag": "doorbell"}"#).unwrap();
        assert_eq!((r.store, r.tag.as_deref()), (true, Some("doorbell")));
        assert!(!parse_capture(br#"{"store": false}"#).unwrap().store);
        for bad in [
            &b"PRESS"[..],
            br#"{"tag": "no spaces"}"#,
            br#"{"store": false, "tag": "x"}"#,
            br#"{"store": "yes"}"#,
            br#"{"stor": true}"#,
            b"\xff\xfe",
        ] {
            assert!(parse_capture(bad).is_err(), "{bad:?}");
        }
    }
}
