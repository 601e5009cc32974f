//! What the client commands print: tables for people (comfy-table, fitted to the terminal's
//! width, plain text without colour so they read the same in a pipe), the API's JSON unchanged
//! for scripts (`--json`), and the small formats both share — local times, ages, sizes.
//!
//! Times in tables are in this machine's time zone (`2026-11-29 08:00:05`), as the friendly
//! time forms read them; `--json` keeps the API's RFC 3339 UTC. Writing to a closed pipe
//! (`heldar frames demo | head -1`) ends the command quietly, as a Unix tool does.

use std::io::Write;

use chrono::{DateTime, Local, Utc};
use comfy_table::{presets, ContentArrangement, Table};

/// A table with these column headers, in the CLI's one style.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    // The first column is padded by the preset; keep the left edge flush.
    if let Some(c) = t.column_mut(0) {
        c.set_padding((0, 1));
    }
    t
}

/// Label/value lines (`camera show`).
pub fn pairs(rows: &[(&str, String)]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    for (k, v) in rows {
        t.add_row(vec![format!("{k}:"), v.clone()]);
    }
    if let Some(c) = t.column_mut(0) {
        c.set_padding((0, 1));
    }
    t
}

/// Print a line (or a table) to stdout; a closed pipe ends the process with success.
pub fn line(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// The API's JSON body, as it came, on one line of stdout.
pub fn raw_json(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    line(text.trim_end());
}

/// A JSON value made by the CLI (for the few outputs that are not one API answer).
pub fn json(v: &serde_json::Value) {
    line(v);
}

/// A time from the API, in this machine's zone; `-` for none.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| {
            t.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

/// A time and how long ago it was: `08:00:05 (12s ago)`-style, for "last seen" columns.
pub fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else {
        return "never".to_string();
    };
    let secs = (now - t).num_seconds();
    if secs < 0 {
        return time(Some(t));
    }
    let span = match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    };
    format!("{span} ago")
}

/// Bytes for people, in the decimal SI units Heldar uses everywhere (`crate::units`): `512 B`,
/// `49.4 kB`, `1.6 GB`. Negative counts (never sent) read as 0.
pub fn bytes(n: i64) -> String {
    crate::units::fmt_bytes(n.max(0) as u64)
}

/// `1 frame`, `2 frames`.
pub fn count(n: i64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `640×360`, or `-` when unknown.
pub fn size(w: Option<i64>, h: Option<i64>) -> String {
    match (w, h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => format!("{w}×{h}"),
        _ => "-".to_string(),
    }
}

/// A sentence cut to `max` characters for a table cell (the full text is in `--json`).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A text field of an API object, `-` when absent.
pub fn text(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().unwrap_or("-").to_string()
}

/// An RFC 3339 field of an API object.
pub fn ts(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_as_a_person_says_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(49_357), "49.4 kB");
        assert_eq!(bytes(1_000_000_000), "1.0 GB");
        let now = Utc::now();
        assert_eq!(
            ago(Some(now - chrono::Duration::seconds(12)), now),
            "12s ago"
        );
        assert_eq!(ago(Some(now - chrono::Duration::minutes(5)), now), "5m ago");
        assert_eq!(ago(Some(now - chrono::Duration::hours(3)), now), "3h ago");
        assert_eq!(ago(None, now), "never");
        assert_eq!(size(Some(640), Some(360)), "640×360");
        assert_eq!(size(None, Some(3)), "-");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
