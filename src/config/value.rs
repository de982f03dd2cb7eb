//! Value syntax shared by the conf file and the flags: parsing and rendering
//! of durations, sizes, counts, bools, lists, addresses, CIDRs, strings and
//! log levels. Every `render_*` output parses back to the same value.
//!
//! Input here comes from operators, but nothing may panic on it: no
//! indexing, checked arithmetic only. Errors are one-line messages without
//! the key; callers prefix the key, flag or `file:line`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use log::LevelFilter;

/// Longest duration accepted (one year): long enough for any interval or
/// timeout, short enough that `Instant + d` cannot overflow and that the
/// seconds fit the `i32` interval fields of the UDP protocol.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Duration units, largest first (rendering picks the first exact one).
const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];

/// Size units, largest first (rendering picks the first exact one).
const SIZE_UNITS: [(&str, usize); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// Splits `"30m"` into `("30", "m")`: the leading ASCII digits and the
/// trimmed rest.
fn split_number(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(end);
    (number, unit.trim())
}

/// Parses `90s`, `30m`, `1h`, `500ms` or a bare `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration like 90s, 30m or 1h";
    let s = s.trim();
    let (number, unit) = split_number(s);
    if number.is_empty() {
        return Err(format!("{EXPECTED}, got {s:?}"));
    }
    let too_large = || format!("duration {s:?} is too large (at most 8760h, one year)");
    let millis_per_unit = match DURATION_UNITS.iter().find(|(name, _)| *name == unit) {
        Some((_, millis)) => Some(*millis),
        None if unit.is_empty() => None,
        None => return Err(format!("{EXPECTED}, got {s:?}")),
    };
    let millis = match millis_per_unit {
        Some(per) => number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(per))
            .ok_or_else(too_large)?,
        // Only zero may go without a unit: is a bare `30` seconds or minutes?
        None if number.bytes().all(|b| b == b'0') => 0,
        None => return Err(format!("{EXPECTED}, got {s:?}")),
    };
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        return Err(too_large());
    }
    Ok(duration)
}

/// Renders a duration in the largest unit that holds it exactly (`30m`,
/// `90s`, `0`). Sub-millisecond parts cannot be written and are dropped;
/// parsed durations never have them.
pub fn render_duration(d: &Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return "0".into();
    }
    for (unit, per) in DURATION_UNITS {
        if millis.is_multiple_of(u128::from(per)) {
            return format!("{}{unit}", millis / u128::from(per));
        }
    }
    format!("{millis}ms")
}

/// Parses a size in bytes: `512`, `512B`, `8KiB`, `16MiB`, `1GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (number, unit) = split_number(s);
    let per = match SIZE_UNITS.iter().find(|(name, _)| *name == unit) {
        Some((_, per)) => *per,
        None if unit.is_empty() => 1,
        None => {
            return Err(format!(
                "expected a size like 512, 8KiB or 16MiB, got {s:?}"
            ))
        }
    };
    if number.is_empty() {
        return Err(format!(
            "expected a size like 512, 8KiB or 16MiB, got {s:?}"
        ));
    }
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Renders a size in the largest binary unit that holds it exactly.
pub fn render_size(n: &usize) -> String {
    for (unit, per) in SIZE_UNITS {
        if *n >= per && n.is_multiple_of(per) && per > 1 {
            return format!("{}{unit}", n / per);
        }
    }
    n.to_string()
}

/// Parses a plain decimal count (digits only).
pub fn parse_count(s: &str) -> Result<usize, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a number, got {s:?}"));
    }
    s.parse().map_err(|_| format!("number {s:?} is too large"))
}

/// Renders a count.
pub fn render_count(n: &usize) -> String {
    n.to_string()
}

/// Parses `true/false`, `yes/no`, `on/off`, `1/0` (any case).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    let s = s.trim();
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

/// Renders `true` or `false`.
pub fn render_bool(b: &bool) -> String {
    b.to_string()
}

/// Parses a string: the trimmed value, without one pair of surrounding
/// double quotes if present (`"X-Real-IP"` → `X-Real-IP`).
pub fn parse_string(s: &str) -> Result<String, String> {
    let s = s.trim();
    let unquoted = s
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(s);
    Ok(unquoted.to_string())
}

/// Renders a string, quoting it when reading it back plain would change it
/// (empty, surrounding spaces, a leading quote, a `#` that could start a
/// comment).
pub fn render_string(s: &str) -> String {
    if s.is_empty() || s.trim() != s || s.contains('#') || s.starts_with('"') {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

/// Parses a comma-separated list; items are trimmed, an empty (or blank)
/// string is the empty list.
pub fn parse_list<T>(s: &str, item: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(|part| item(part.trim())).collect()
}

/// Renders a list as `a, b, c` (the empty list as an empty string).
pub fn render_list<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a socket address: `0.0.0.0:6969`, `[::]:6969`.
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("expected an address like 0.0.0.0:6969 or [::]:6969, got {s:?}"))
}

/// Parses a network `10.0.0.0/8`, `fd00::/8`, or a bare IP as a single-host
/// network (`/32`, `/128`).
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("expected a network like 10.0.0.0/8 or an IP address, got {s:?}"))
}

/// Parses a log level: off, error, warn, info, debug, trace (any case).
pub fn parse_level(s: &str) -> Result<LevelFilter, String> {
    let s = s.trim();
    s.parse()
        .map_err(|_| format!("expected off, error, warn, info, debug or trace, got {s:?}"))
}

/// Renders a log level in lower case.
pub fn render_level(level: &LevelFilter) -> String {
    level.as_str().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn durations() {
        let ok: &[(&str, Duration, &str)] = &[
            ("0", S(0), "0"),
            ("0s", S(0), "0"),
            ("90s", S(90), "90s"),
            ("1800s", S(1800), "30m"),
            ("30m", S(1800), "30m"),
            (" 1h ", S(3600), "1h"),
            ("120m", S(7200), "2h"),
            ("500ms", Duration::from_millis(500), "500ms"),
            ("1500ms", Duration::from_millis(1500), "1500ms"),
            ("2000ms", S(2), "2s"),
            ("8760h", MAX_DURATION, "8760h"),
        ];
        for (input, want, rendered) in ok {
            assert_eq!(parse_duration(input).as_ref(), Ok(want), "{input}");
            assert_eq!(render_duration(want), *rendered, "{input}");
            assert_eq!(parse_duration(&render_duration(want)), Ok(*want), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("30", "expected a duration like 90s, 30m or 1h, got \"30\""),
            ("", "expected a duration like 90s, 30m or 1h, got \"\""),
            ("m", "expected a duration like 90s, 30m or 1h, got \"m\""),
            (
                "-5s",
                "expected a duration like 90s, 30m or 1h, got \"-5s\"",
            ),
            ("5d", "expected a duration like 90s, 30m or 1h, got \"5d\""),
            (
                "1.5h",
                "expected a duration like 90s, 30m or 1h, got \"1.5h\"",
            ),
            (
                "99999999999999999999x",
                "expected a duration like 90s, 30m or 1h, got \"99999999999999999999x\"",
            ),
            (
                "99999999999999999999",
                "expected a duration like 90s, 30m or 1h, got \"99999999999999999999\"",
            ),
            (
                "8761h",
                "duration \"8761h\" is too large (at most 8760h, one year)",
            ),
            (
                "99999999999999999999h",
                "duration \"99999999999999999999h\" is too large (at most 8760h, one year)",
            ),
            (
                "18446744073709551615h",
                "duration \"18446744073709551615h\" is too large (at most 8760h, one year)",
            ),
        ];
        for (input, want) in bad {
            assert_eq!(parse_duration(input), Err(want.to_string()), "{input}");
        }
    }

    #[test]
    fn sizes() {
        let ok: &[(&str, usize, &str)] = &[
            ("0", 0, "0"),
            ("512", 512, "512"),
            ("512B", 512, "512"),
            ("1024", 1024, "1KiB"),
            ("8KiB", 8192, "8KiB"),
            ("1536", 1536, "1536"),
            ("16MiB", 16 << 20, "16MiB"),
            ("1024KiB", 1 << 20, "1MiB"),
            ("1GiB", 1 << 30, "1GiB"),
        ];
        for (input, want, rendered) in ok {
            assert_eq!(parse_size(input), Ok(*want), "{input}");
            assert_eq!(render_size(want), *rendered, "{input}");
        }
        for input in ["", "KiB", "8kb", "8 K", "-1", "1.5MiB"] {
            let want = format!("expected a size like 512, 8KiB or 16MiB, got {input:?}");
            assert_eq!(parse_size(input), Err(want), "{input}");
        }
        for input in ["99999999999999999999999", "99999999999999999GiB"] {
            assert_eq!(
                parse_size(input),
                Err(format!("size {input:?} is too large"))
            );
        }
    }

    #[test]
    fn counts_bools_strings() {
        assert_eq!(parse_count(" 42 "), Ok(42));
        for input in ["lots", "", "-1", "+1", "1e3", "4 2"] {
            let want = format!("expected a number, got {input:?}");
            assert_eq!(parse_count(input), Err(want), "{input}");
        }
        let huge = "99999999999999999999999";
        assert_eq!(
            parse_count(huge),
            Err(format!("number {huge:?} is too large"))
        );

        let bools = [("true", true), ("YES", true), ("on", true), ("1", true)];
        let bools = bools.into_iter().chain([
            ("false", false),
            ("No", false),
            ("off", false),
            ("0", false),
        ]);
        for (input, want) in bools {
            assert_eq!(parse_bool(input), Ok(want), "{input}");
        }
        assert_eq!(
            parse_bool("maybe"),
            Err("expected true or false, got \"maybe\"".into())
        );

        let strings = [
            ("X-Forwarded-For", "X-Forwarded-For", "X-Forwarded-For"),
            ("  \"X-Real-IP\" ", "X-Real-IP", "X-Real-IP"),
            ("\"\"", "", "\"\""),
            ("\" a \"", " a ", "\" a \""),
            ("\"", "\"", "\"\"\""),
            ("a#b", "a#b", "\"a#b\""),
            ("\"abc", "\"abc", "\"\"abc\""),
        ];
        for (input, want, rendered) in strings {
            assert_eq!(parse_string(input).as_deref(), Ok(want), "{input}");
            let want = want.to_string();
            assert_eq!(render_string(&want), rendered, "{input}");
            assert_eq!(parse_string(&render_string(&want)), Ok(want), "{input}");
        }
    }

    #[test]
    fn lists_addresses_nets() {
        let addrs = parse_list(" 0.0.0.0:6969 ,[::]:6969", parse_socket_addr);
        let addrs = addrs.unwrap_or_default();
        assert_eq!(render_list(&addrs), "0.0.0.0:6969, [::]:6969");
        assert_eq!(parse_list("  ", parse_socket_addr), Ok(vec![]));
        assert_eq!(render_list::<SocketAddr>(&[]), "");
        assert_eq!(
            parse_list("0.0.0.0:1,,", parse_socket_addr),
            Err("expected an address like 0.0.0.0:6969 or [::]:6969, got \"\"".into())
        );
        assert!(parse_socket_addr("0.0.0.0").is_err());

        let nets = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("::1", "::1/128"),
            ("fd00::/8", "fd00::/8"),
        ];
        for (input, rendered) in nets {
            assert_eq!(
                parse_net(input).map(|n| n.to_string()).as_deref(),
                Ok(rendered)
            );
        }
        for input in ["10.0.0.0/33", "localhost", "", "1.2.3.4/"] {
            assert!(parse_net(input).is_err(), "{input}");
        }
    }

    #[test]
    fn levels() {
        let levels = [
            ("off", LevelFilter::Off),
            ("INFO", LevelFilter::Info),
            ("trace", LevelFilter::Trace),
        ];
        for (input, want) in levels {
            assert_eq!(parse_level(input), Ok(want));
            assert_eq!(parse_level(&render_level(&want)), Ok(want));
        }
        assert_eq!(render_level(&LevelFilter::Warn), "warn");
        assert!(parse_level("loud").is_err());
    }
}
