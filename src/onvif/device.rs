//! The ONVIF device service (ver10): the device's clock (GetSystemDateAndTime, asked without
//! credentials, as the standard allows, so that every later request can be stamped with the
//! device's own time), what the device is (GetDeviceInformation) and where its media service
//! lives (GetCapabilities).
//!
//! It reads only the fields Heldar uses and fails with the operation's name when one it needs
//! is missing.

use chrono::{NaiveDate, TimeDelta, Utc};

use super::soap::{self, Element};
use super::{OnvifError, Session};

/// What a device says it is (GetDeviceInformation); each field as the device spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub serial: String,
}

fn missing(s: &Session, operation: &str, what: &str) -> OnvifError {
    OnvifError::BadXml(format!(
        "the device answered with XML Heldar cannot read: {}'s answer to {operation} has no {what}",
        s.address
    ))
}

/// GetSystemDateAndTime (unauthenticated): set the session's clock offset to the device's UTC
/// time minus Heldar's, and return it. A device that gives no UTC time, or refuses the
/// request, leaves the offset at zero (its local time without a zone cannot be turned into UTC
/// safely); only an unreachable or silent device fails here.
pub async fn sync_clock(s: &mut Session) -> Result<TimeDelta, OnvifError> {
    let op = "GetSystemDateAndTime";
    let sent = Utc::now();
    let url = s.device_url.clone();
    let answer = match s
        .call(&url, op, false, &|w| {
            soap::operation(w, "tds", soap::NS_DEVICE, op, |_| Ok(()))
        })
        .await
    {
        Ok(a) => a,
        // A device that wants credentials even for its clock (against the standard), or
        // faults: go on with Heldar's clock; a device in step needs no correction.
        Err(OnvifError::AuthRefused(_) | OnvifError::Fault(_)) => return Ok(TimeDelta::zero()),
        Err(e) => return Err(e),
    };
    let received = Utc::now();
    let Some(utc) = answer.find("UTCDateTime") else {
        return Ok(TimeDelta::zero());
    };
    let device = device_time(utc).ok_or_else(|| missing(s, op, "valid UTCDateTime"))?;
    // The device read its clock somewhere between sending and receiving: take the midpoint.
    let ours = sent + (received - sent) / 2;
    s.offset = device - ours;
    Ok(s.offset)
}

fn device_time(utc: &Element) -> Option<chrono::DateTime<Utc>> {
    let n = |path: &[&str]| -> Option<u32> { utc.text_at(path)?.trim().parse().ok() };
    let date = NaiveDate::from_ymd_opt(
        utc.text_at(&["Date", "Year"])?.trim().parse().ok()?,
        n(&["Date", "Month"])?,
        n(&["Date", "Day"])?,
    )?;
    let time = date.and_hms_opt(
        n(&["Time", "Hour"])?,
        n(&["Time", "Minute"])?,
        n(&["Time", "Second"])?,
    )?;
    Some(time.and_utc())
}

/// GetDeviceInformation (authenticated).
pub async fn information(s: &Session) -> Result<DeviceInfo, OnvifError> {
    let op = "GetDeviceInformation";
    let url = s.device_url.clone();
    let a = s
        .call(&url, op, true, &|w| {
            soap::operation(w, "tds", soap::NS_DEVICE, op, |_| Ok(()))
        })
        .await?;
    let field = |name: &str| a.text_at(&[name]).unwrap_or_default().to_string();
    Ok(DeviceInfo {
        manufacturer: field("Manufacturer"),
        model: field("Model"),
        firmware: field("FirmwareVersion"),
        serial: field("SerialNumber"),
    })
}

/// GetCapabilities (authenticated): the media service's address, if the device names one
/// (host replaced by the device's address, see [`Session::service_url`]). `None` when the
/// device answers without one or refuses the operation with a fault other than an auth refusal:
/// many devices serve media at the device service's address, which the caller then uses.
pub async fn media_url(s: &Session) -> Result<Option<url::Url>, OnvifError> {
    let op = "GetCapabilities";
    let url = s.device_url.clone();
    let answer = s
        .call(&url, op, true, &|w| {
            soap::operation(w, "tds", soap::NS_DEVICE, op, |w| {
                soap::text_element(w, "tds:Category", "All")
            })
        })
        .await;
    match answer {
        Ok(a) => Ok(a
            .find("Media")
            .and_then(|m| m.text_at(&["XAddr"]))
            .and_then(|x| s.service_url(x))),
        Err(OnvifError::Fault(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
