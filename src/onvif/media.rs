//! The ONVIF media service (ver10, Profile S): the device's media profiles (GetProfiles) with
//! their video encoding and resolution, and each profile's snapshot URI (GetSnapshotUri) and RTSP
//! stream URI (GetStreamUri, RTP over RTSP, unicast). Media2 (ver20) is not used: every Profile S
//! device answers ver10.
//!
//! URIs are returned as the device gave them; judging them (scheme, host, credentials inside)
//! is the caller's (`ops::onvif`).

use super::soap::{self, Element};
use super::{OnvifError, Session};

/// One media profile as the device describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub token: String,
    pub name: String,
    /// The video encoder's `Encoding` as sent (`H264`, `H265`, `JPEG`, `MPEG4`); empty when
    /// the profile has no video encoder.
    pub encoding: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// GetProfiles at `url` (the media service).
pub async fn profiles(s: &Session, url: &url::Url) -> Result<Vec<Profile>, OnvifError> {
    let op = "GetProfiles";
    let a = s
        .call(url, op, true, &|w| {
            soap::operation(w, "trt", soap::NS_MEDIA, op, |_| Ok(()))
        })
        .await?;
    Ok(a.children_named("Profiles").filter_map(profile).collect())
}

fn profile(p: &Element) -> Option<Profile> {
    let token = p.attr("token")?.trim().to_string();
    if token.is_empty() {
        return None;
    }
    let venc = p.child("VideoEncoderConfiguration");
    let dim = |n: &str| {
        venc?
            .text_at(&["Resolution", n])?
            .trim()
            .parse::<u32>()
            .ok()
    };
    Some(Profile {
        name: p.text_at(&["Name"]).unwrap_or(&token).to_string(),
        encoding: venc
            .and_then(|v| v.text_at(&["Encoding"]))
            .unwrap_or_default()
            .to_string(),
        width: dim("Width"),
        height: dim("Height"),
        token,
    })
}

/// GetSnapshotUri for `token`: the URI, or `None` when the device has no snapshot for it.
pub async fn snapshot_uri(
    s: &Session,
    url: &url::Url,
    token: &str,
) -> Result<Option<String>, OnvifError> {
    let op = "GetSnapshotUri";
    let answer = s
        .call(url, op, true, &|w| {
            soap::operation(w, "trt", soap::NS_MEDIA, op, |w| {
                soap::text_element(w, "trt:ProfileToken", token)
            })
        })
        .await;
    match answer {
        Ok(a) => Ok(a.text_at(&["MediaUri", "Uri"]).map(str::to_string)),
        // A device without snapshots answers a fault (ActionNotSupported): no snapshot URI.
        Err(OnvifError::Fault(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// GetStreamUri for `token` (RTP-Unicast over RTSP).
pub async fn stream_uri(
    s: &Session,
    url: &url::Url,
    token: &str,
) -> Result<Option<String>, OnvifError> {
    let op = "GetStreamUri";
    let a = s
        .call(url, op, true, &|w| {
            soap::operation(w, "trt", soap::NS_MEDIA, op, |w| {
                w.create_element("trt:StreamSetup")
                    .write_inner_content(|w| {
                        w.create_element("tt:Stream")
                            .with_attribute(("xmlns:tt", soap::NS_SCHEMA))
                            .write_text_content(quick_xml::events::BytesText::new("RTP-Unicast"))?;
                        w.create_element("tt:Transport")
                            .with_attribute(("xmlns:tt", soap::NS_SCHEMA))
                            .write_inner_content(|w| {
                                soap::text_element(w, "tt:Protocol", "RTSP")
                            })?;
                        Ok(())
                    })?;
                soap::text_element(w, "trt:ProfileToken", token)
            })
        })
        .await?;
    Ok(a.text_at(&["MediaUri", "Uri"]).map(str::to_string))
}
