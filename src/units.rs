//! How Heldar writes a byte count for people: decimal SI units, everywhere (logs, the bench
//! report, the dashboard's `fmtBytes` in web/js/util.js, the docs).
//!
//! 1 kB = 1,000 bytes, 1 MB = 10^6, 1 GB = 10^9, 1 TB = 10^12 — the units of disk vendors and
//! of `df -H`, and the units of the settings (HELDAR_SNAPSHOT_MAX_GB=1 is 1,000,000,000 bytes,
//! shown as "1.0 GB", never "954 MB"). The API always gives exact byte counts (`*_bytes`
//! fields); only their display is rounded. A limit that is a power of two is written with IEC
//! prefixes (64 KiB), never as "KB".

/// `n` bytes as `"953 B"`, `"1.5 kB"`, `"954 MB"`, `"1.0 GB"`: three significant digits at
/// most, decimal units.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 999.95 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v >= 99.5 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_bytes;

    #[test]
    fn decimal_si_units() {
        assert_eq!(fmt_bytes(0), "0 B");
        assert_eq!(fmt_bytes(999), "999 B");
        assert_eq!(fmt_bytes(1_000), "1.0 kB");
        assert_eq!(fmt_bytes(1_500), "1.5 kB");
        assert_eq!(fmt_bytes(65_536), "65.5 kB");
        assert_eq!(fmt_bytes(954_000_000), "954 MB");
        assert_eq!(fmt_bytes(999_999_999), "1.0 GB");
        assert_eq!(fmt_bytes(1_000_000_000), "1.0 GB");
        assert_eq!(fmt_bytes(20_000_000_000), "20.0 GB");
        assert_eq!(fmt_bytes(1_234_000_000_000), "1.2 TB");
    }
}
