//! The camera registry's rules: which URLs a camera has (vendor templates and explicit
//! overrides), how a request body becomes a valid camera ([`spec`]), and how credentials are kept
//! out of everything Heldar shows ([`mask`]).
//!
//! Nothing here does I/O but reading the sealing key file ([`seal`]); `ops::cameras` keeps the
//! rows and the frame files consistent when cameras are created, edited and deleted. Every URL or
//! text that leaves Heldar — an API response, a log line, an error — passes through [`mask`]
//! first.

pub mod changes;
pub mod fingerprint;
pub mod mask;
pub mod seal;
pub mod spec;
pub mod vendor;

use crate::models::{
    Camera, CameraActivity, CameraHealth, CameraSpec, CameraStatus, CameraView, EffectiveUrls,
};

/// The URLs a capture uses, with credentials still in them (never shown; see [`view`]).
pub fn effective_urls(camera: &Camera) -> EffectiveUrls {
    let t = vendor::template_urls(
        camera.vendor,
        &camera.address,
        camera.rtsp_port,
        camera.http_port,
    );
    EffectiveUrls {
        main_stream: camera.main_stream_url.clone().or(t.main_stream),
        sub_stream: camera.sub_stream_url.clone().or(t.sub_stream),
        snapshot: camera.snapshot_url.clone().or(t.snapshot),
    }
}

/// The API's view of a camera: no password, every URL masked.
pub fn view(camera: &Camera, status: CameraStatus, activity: CameraActivity) -> CameraView {
    let m = |u: &Option<String>| u.as_deref().map(mask::mask_url);
    let eff = effective_urls(camera);
    CameraView {
        id: camera.id.clone(),
        name: camera.name.clone(),
        vendor: camera.vendor,
        address: camera.address.clone(),
        rtsp_port: camera.rtsp_port,
        http_port: camera.http_port,
        username: camera.username.clone(),
        has_password: camera.password.as_deref().is_some_and(|p| !p.is_empty()),
        main_stream_url: m(&camera.main_stream_url),
        sub_stream_url: m(&camera.sub_stream_url),
        snapshot_url: m(&camera.snapshot_url),
        snapshot_source: camera.snapshot_source,
        tls_verify: camera.tls_verify,
        tls_fingerprint: camera.tls_fingerprint.clone(),
        rtsp_frame_mode: camera.rtsp_frame_mode,
        max_gb: camera.max_bytes.map(|b| b as f64 / 1e9),
        effective_urls: EffectiveUrls {
            main_stream: m(&eff.main_stream),
            sub_stream: m(&eff.sub_stream),
            snapshot: m(&eff.snapshot),
        },
        health: CameraHealth::of(
            status.state,
            activity.schedules_enabled,
            activity.last_frame_at,
        ),
        status,
        rtsp: None,
        schedules_enabled: activity.schedules_enabled,
        last_frame_at: activity.last_frame_at,
        created_at: camera.created_at,
        updated_at: camera.updated_at,
    }
}

/// Every secret of a camera, for [`mask::mask_text`]: its password and any password embedded in
/// an explicit URL.
pub fn secrets(camera: &CameraSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = camera.password.as_deref().filter(|p| !p.is_empty()) {
        out.push(p.to_string());
    }
    for u in [
        &camera.main_stream_url,
        &camera.sub_stream_url,
        &camera.snapshot_url,
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(url) = url::Url::parse(u) {
            if let Some(p) = url.password() {
                let decoded = percent_encoding::percent_decode_str(p).decode_utf8_lossy();
                out.push(decoded.into_owned());
            }
        }
    }
    out
}
