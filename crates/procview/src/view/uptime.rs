//! `/proc/uptime`: the container's age and its CPUs' idle time.
//!
//! No unsafe here, so "now" on CLOCK_BOOTTIME is the host's `/proc/uptime` (boottime with
//! centisecond resolution, truncated as the kernel prints it).

/// The first field of the host's /proc/uptime ("60227.51 58725.76\n"), in nanoseconds.
pub fn parse_boottime_ns(text: &str) -> Option<u64> {
    let up = text.split_whitespace().next()?;
    let (s, frac) = up.split_once('.').unwrap_or((up, "0"));
    let s: u64 = s.parse().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u64 = format!("{frac:0<9}").parse().ok()?;
    Some(s * 1_000_000_000 + frac)
}

/// The container's age in nanoseconds (0 if it seems created in the future).
pub fn age_ns(now_ns: u64, created_ns: u64) -> u64 {
    now_ns.saturating_sub(created_ns)
}

/// `"{up} {idle}\n"` with two decimals, both truncated as the kernel does.
pub fn render(age_ns: u64, idle_ticks: u64) -> String {
    let cs = age_ns / 10_000_000;
    format!(
        "{}.{:02} {}.{:02}\n",
        cs / 100,
        cs % 100,
        idle_ticks / 100,
        idle_ticks % 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render() {
        assert_eq!(
            parse_boottime_ns("60227.51 58725.76\n"),
            Some(60_227_510_000_000)
        );
        assert_eq!(parse_boottime_ns("5.5 1.00\n"), Some(5_500_000_000));
        assert_eq!(parse_boottime_ns("x"), None);
        let age = age_ns(60_227_510_000_000, 60_000_000_000_000);
        assert_eq!(age, 227_510_000_000);
        assert_eq!(render(age, 45_007), "227.51 450.07\n");
        assert_eq!(render(age_ns(1, 5), 0), "0.00 0.00\n");
        assert_eq!(render(1_999_999_999, 1), "1.99 0.01\n");
    }
}
