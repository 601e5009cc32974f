//! Vendor URL templates (docs/design.md §6): where each maker puts its streams and its JPEG snapshot.
//!
//! Templates carry no credentials; capture adds them the way the protocol wants (auth headers for
//! HTTP, userinfo for RTSP). `onvif` and `generic` cameras have no fixed layout, so they need
//! explicit URLs (ONVIF discovery finds them and fills them in, docs/onvif.md).

use crate::models::Vendor;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateUrls {
    pub main_stream: Option<String>,
    pub sub_stream: Option<String>,
    pub snapshot: Option<String>,
}

/// The vendor's URLs for a camera at `address`; empty when the address is empty or the vendor
/// has no template.
pub fn template_urls(
    vendor: Vendor,
    address: &str,
    rtsp_port: u16,
    http_port: u16,
) -> TemplateUrls {
    if address.is_empty() {
        return TemplateUrls::default();
    }
    // An IPv6 literal needs brackets inside a URL.
    let host = if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    let rtsp = |path: &str| Some(format!("rtsp://{host}:{rtsp_port}{path}"));
    let http = |path: &str| Some(format!("http://{host}:{http_port}{path}"));
    match vendor {
        Vendor::Hikvision => TemplateUrls {
            main_stream: rtsp("/Streaming/Channels/101"),
            sub_stream: rtsp("/Streaming/Channels/102"),
            snapshot: http("/ISAPI/Streaming/channels/101/picture"),
        },
        Vendor::Dahua | Vendor::Amcrest => TemplateUrls {
            main_stream: rtsp("/cam/realmonitor?channel=1&subtype=0"),
            sub_stream: rtsp("/cam/realmonitor?channel=1&subtype=1"),
            snapshot: http("/cgi-bin/snapshot.cgi"),
        },
        Vendor::Reolink => TemplateUrls {
            main_stream: rtsp("/h264Preview_01_main"),
            sub_stream: rtsp("/h264Preview_01_sub"),
            snapshot: http("/cgi-bin/api.cgi?cmd=Snap&channel=0"),
        },
        Vendor::Axis => TemplateUrls {
            main_stream: rtsp("/axis-media/media.amp"),
            sub_stream: rtsp("/axis-media/media.amp?resolution=640x360"),
            snapshot: http("/axis-cgi/jpg/image.cgi"),
        },
        Vendor::Onvif | Vendor::Generic => TemplateUrls::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vendor_builds_its_documented_urls() {
        let t = template_urls(Vendor::Hikvision, "10.0.0.5", 554, 80);
        assert_eq!(
            t.main_stream.unwrap(),
            "rtsp://10.0.0.5:554/Streaming/Channels/101"
        );
        assert_eq!(
            t.sub_stream.unwrap(),
            "rtsp://10.0.0.5:554/Streaming/Channels/102"
        );
        assert_eq!(
            t.snapshot.unwrap(),
            "http://10.0.0.5:80/ISAPI/Streaming/channels/101/picture"
        );
        for v in [Vendor::Dahua, Vendor::Amcrest] {
            let t = template_urls(v, "cam.local", 8554, 8080);
            assert_eq!(
                t.snapshot.unwrap(),
                "http://cam.local:8080/cgi-bin/snapshot.cgi"
            );
            assert_eq!(
                t.sub_stream.unwrap(),
                "rtsp://cam.local:8554/cam/realmonitor?channel=1&subtype=1"
            );
        }
        let t = template_urls(Vendor::Reolink, "r", 554, 80);
        assert_eq!(
            t.snapshot.unwrap(),
            "http://r:80/cgi-bin/api.cgi?cmd=Snap&channel=0"
        );
        let t = template_urls(Vendor::Axis, "a", 554, 80);
        assert_eq!(t.snapshot.unwrap(), "http://a:80/axis-cgi/jpg/image.cgi");
        assert_eq!(
            template_urls(Vendor::Generic, "g", 554, 80),
            TemplateUrls::default()
        );
        assert_eq!(
            template_urls(Vendor::Hikvision, "", 554, 80),
            TemplateUrls::default()
        );
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let t = template_urls(Vendor::Hikvision, "fe80::1", 554, 80);
        assert_eq!(
            t.main_stream.unwrap(),
            "rtsp://[fe80::1]:554/Streaming/Channels/101"
        );
    }
}
