//! The key table: every configuration key once, with its kind, default,
//! unit, doc line, setter, getter and single-key check. The conf parser,
//! the flags, `--help`, `--print-config` and the shipped `tracker.conf` are
//! all generated from [`KEYS`]; nothing else lists the keys.

use super::value as v;
use super::Config;

/// One configuration key: a conf-file key and a long flag (`--` + name
/// with `_` → `-`).
pub struct Key {
    /// Conf-file key, equal to the `Config` field name.
    pub name: &'static str,
    /// Value kind, for people: "duration", "size", "count", "bool",
    /// "address list", "CIDR list", "string", "path" or "level".
    pub kind: &'static str,
    /// Built-in default, in conf syntax; `Config::default` parses it.
    pub default: &'static str,
    /// What a number counts ("peers", "bytes"), or empty.
    pub unit: &'static str,
    /// One line for operators, shown in `--help` and `tracker.conf`.
    pub doc: &'static str,
    set: fn(&mut Config, &str) -> Result<(), String>,
    get: fn(&Config) -> String,
    check: fn(&Config) -> Result<(), String>,
}

impl Key {
    /// Parses `value` and stores it in `config`; on error `config` is
    /// unchanged and the message does not name the key. It counts as set by the operator, and the keys left alone that
    /// follow it are derived again (`Config::derive`).
    pub fn set(&self, config: &mut Config, value: &str) -> Result<(), String> {
        (self.set)(config, value)?;
        config.explicit.insert(self.name);
        config.derive();
        Ok(())
    }

    /// This key's value in `config`, in conf syntax.
    pub fn get(&self, config: &Config) -> String {
        (self.get)(config)
    }

    /// Runs this key's own limits (not the rules between keys) on `config`.
    pub fn check(&self, config: &Config) -> Result<(), String> {
        (self.check)(config)
    }

    /// The command-line flag: `--announce-interval` for `announce_interval`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// The default as docs show it: `empty` for an empty list or string.
    pub fn shown_default(&self) -> &'static str {
        if self.default.is_empty() {
            "empty"
        } else {
            self.default
        }
    }
}

/// The key with this conf name.
pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// One table row. `parse` turns the text into the field's type, `render`
/// turns the field back into text, the optional `check` limits the value.
macro_rules! key {
    (@check $name:ident) => { |_: &Config| Ok(()) };
    (@check $name:ident $check:expr) => { |config: &Config| ($check)(&config.$name) };
    ($name:ident, $kind:literal, $default:literal, $unit:literal, $doc:literal,
     $parse:expr, $render:expr $(, $check:expr)?) => {
        Key {
            name: stringify!($name),
            kind: $kind,
            default: $default,
            unit: $unit,
            doc: $doc,
            set: |config, text| {
                let parsed = ($parse)(text)?;
                $( ($check)(&parsed)?; )?
                config.$name = parsed;
                Ok(())
            },
            get: |config| ($render)(&config.$name),
            check: key!(@check $name $($check)?),
        }
    };
}

/// Every key, in `tracker.conf` order.
pub static KEYS: &[Key] = &[
    key! {
        http_listen, "address list", "0.0.0.0:6969, [::]:6969", "",
        "Addresses the HTTP tracker listens on",
        |s| v::parse_list(s, v::parse_socket_addr), v::render_list
    },
    key! {
        udp_listen, "address list", "0.0.0.0:6969, [::]:6969", "",
        "Addresses the UDP tracker (BEP 15) listens on; empty = no UDP",
        |s| v::parse_list(s, v::parse_socket_addr), v::render_list
    },
    key! {
        udp_recv_buffer, "size", "8MiB", "bytes",
        "Receive buffer asked for each UDP socket; the kernel may grant less (logged)",
        v::parse_size, v::render_size, super::check_udp_recv_buffer
    },
    key! {
        workers, "count", "auto", "threads",
        "Worker threads serving requests; auto = one per CPU core",
        parse_workers, render_workers, super::check_workers
    },
    key! {
        stripes, "count", "1024", "locks",
        "Locks over the torrent map, a power of two; more means less contention",
        v::parse_count, v::render_count, super::check_stripes
    },
    key! {
        announce_interval, "duration", "30m", "",
        "How often clients are told to announce: the interval they receive",
        v::parse_duration, v::render_duration, super::check_positive_duration
    },
    key! {
        min_announce_interval, "duration", "15m", "",
        "Clients must not announce more often than this: the min interval they receive; unset: half of announce_interval",
        v::parse_duration, v::render_duration
    },
    key! {
        announce_jitter, "duration", "3m", "",
        "Random spread added to announce_interval so clients do not announce in waves; unset: a tenth of announce_interval",
        v::parse_duration, v::render_duration
    },
    key! {
        peer_timeout, "duration", "45m", "",
        "A peer that has not announced for this long is dropped; unset: announce_interval and a half",
        v::parse_duration, v::render_duration, super::check_positive_duration
    },
    key! {
        reap_interval, "duration", "2m", "",
        "How often timed-out peers and empty torrents are swept out",
        v::parse_duration, v::render_duration, super::check_positive_duration
    },
    key! {
        numwant_default, "count", "50", "peers",
        "Peers returned when a client does not say how many it wants",
        v::parse_count, v::render_count
    },
    key! {
        numwant_max, "count", "200", "peers",
        "Most peers returned in one announce, whatever the client asks for",
        v::parse_count, v::render_count, super::check_positive_count
    },
    key! {
        max_scrape_hashes, "count", "64", "info hashes",
        "Most torrents answered in one scrape request",
        v::parse_count, v::render_count, super::check_positive_count
    },
    key! {
        allow_ip_spoofing, "bool", "false", "",
        "Let clients pick the address handed out for them with the ip, ipv4 and ipv6 parameters",
        v::parse_bool, v::render_bool
    },
    key! {
        trusted_proxies, "CIDR list", "", "",
        "Reverse proxies whose real_ip_header is believed, as networks or IPs; empty = none",
        |s| v::parse_list(s, v::parse_net), v::render_list
    },
    key! {
        real_ip_header, "string", "X-Forwarded-For", "",
        "Header naming the client address on connections from a trusted proxy",
        v::parse_string, v::render_string, super::check_header_name
    },
    key! {
        http_max_request_bytes, "size", "8KiB", "bytes",
        "Largest request line plus headers; bigger requests are refused",
        v::parse_size, v::render_size, super::check_request_bytes
    },
    key! {
        http_max_headers, "count", "32", "headers",
        "Most header lines in one request",
        v::parse_count, v::render_count, super::check_headers
    },
    key! {
        http_request_timeout, "duration", "5s", "",
        "Time a client has from its first byte to a complete request head",
        v::parse_duration, v::render_duration, super::check_positive_duration
    },
    key! {
        http_idle_timeout, "duration", "30s", "",
        "How long an idle keep-alive connection stays open; 0 closes after each reply",
        v::parse_duration, v::render_duration
    },
    key! {
        http_max_connections, "count", "10000", "connections",
        "Open HTTP connections, all workers together; more are refused",
        v::parse_count, v::render_count, super::check_positive_count
    },
    key! {
        http_max_connections_per_ip, "count", "64", "connections",
        "Open HTTP connections from one client address",
        v::parse_count, v::render_count, super::check_positive_count
    },
    key! {
        stats_path, "path", "/stats", "",
        "URL path of the stats page",
        v::parse_string, v::render_string, super::check_stats_path
    },
    key! {
        stats_allow, "CIDR list", "127.0.0.0/8, ::1/128", "",
        "Networks or IPs allowed to read the stats page; empty = nobody",
        |s| v::parse_list(s, v::parse_net), v::render_list
    },
    key! {
        log_level, "level", "info", "",
        "Log detail: off, error, warn, info, debug or trace; RUST_LOG overrides it",
        v::parse_level, v::render_level
    },
    key! {
        state_file, "path", "", "",
        "File the swarms are saved to on shutdown and restored from at start; empty = off",
        v::parse_string, v::render_string
    },
    key! {
        state_save_interval, "duration", "0", "",
        "Also save the swarms this often while running; 0 = only on shutdown",
        v::parse_duration, v::render_duration
    },
    key! {
        allowlist, "path", "", "",
        "File of 40-hex info hashes; when set, only these torrents are tracked",
        v::parse_string, v::render_string
    },
    key! {
        denylist, "path", "", "",
        "File of 40-hex info hashes that are always refused (wins over allowlist)",
        v::parse_string, v::render_string
    },
    key! {
        prefer_local_peers, "bool", "true", "",
        "Hand out peers in the announcer's own subnet first, then its local networks",
        v::parse_bool, v::render_bool
    },
    key! {
        local_prefix_v4, "count", "24", "bits",
        "IPv4 prefix length that makes two peers neighbours",
        v::parse_count, v::render_count, super::check_prefix_v4
    },
    key! {
        local_prefix_v6, "count", "64", "bits",
        "IPv6 prefix length that makes two peers neighbours",
        v::parse_count, v::render_count, super::check_prefix_v6
    },
    key! {
        local_networks, "CIDR list", "", "",
        "Networks whose peers are preferred for each other (an ISP's or campus's ranges)",
        |s| v::parse_list(s, v::parse_net), v::render_list
    },
    key! {
        full_scrape, "bool", "false", "",
        "Answer /scrape without info_hash with every torrent",
        v::parse_bool, v::render_bool
    },
    key! {
        full_scrape_interval, "duration", "5m", "",
        "One full scrape per client address per this period",
        v::parse_duration, v::render_duration
    },
    key! {
        mode, "mode", "public", "",
        "public: anyone may announce; private: users by passkey, credit to a database (Gazelle/Ocelot)",
        super::parse_mode, super::render_mode
    },
    key! {
        site_password, "string", "", "",
        "Private mode: the site's secret for /<site_password>/update (32 characters)",
        v::parse_string, v::render_string, super::check_password
    },
    key! {
        report_password, "string", "", "",
        "Private mode: the secret for /<report_password>/report (32 characters)",
        v::parse_string, v::render_string, super::check_password
    },
    key! {
        database, "string", "sqlite:hayate.db", "",
        "Private mode: where users, torrents and credit live; sqlite:PATH (relative to the working directory) or mysql://user:password@host:port/db (a Gazelle site's database; make build-mysql)",
        v::parse_string, v::render_string, super::check_database
    },
    key! {
        gazelle_schema, "schema", "ops", "",
        "Private mode, mysql:// only: where the site keeps credit and swarm counts; ops (users_leech_stats, torrents_leech_stats) or classic (What.CD: users_main, torrents)",
        super::parse_schema, super::render_schema
    },
    key! {
        readonly, "bool", "false", "",
        "Private mode, mysql:// only: load and serve but never write to the database (to try hayate beside a live Ocelot)",
        v::parse_bool, v::render_bool
    },
    key! {
        site_url, "string", "", "",
        "Private mode: the site's http:// address; after a tokened snatch hayate calls <site_url>/tools.php?...&type=expiretoken as Ocelot does; empty = off",
        v::parse_string, v::render_string, super::check_site_url
    },
    key! {
        flush_interval, "duration", "3s", "",
        "Private mode: how often credit and peer baselines are committed, in one transaction",
        v::parse_duration, v::render_duration, super::check_positive_duration
    },
    key! {
        del_reason_lifetime, "duration", "24h", "",
        "Private mode: how long a deleted torrent's announces are told its deletion reason",
        v::parse_duration, v::render_duration
    },
];

/// `auto` (stored as 0) or a thread count.
fn parse_workers(s: &str) -> Result<usize, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        Ok(0)
    } else {
        v::parse_count(s).map_err(|_| format!("expected auto or a number, got {:?}", s.trim()))
    }
}

fn render_workers(n: &usize) -> String {
    if *n == 0 {
        "auto".into()
    } else {
        n.to_string()
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a likely typo (at most a third of the letters differ).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word: Vec<char> = word.chars().collect();
    let limit = (word.len() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let other: Vec<char> = candidate.chars().collect();
            // The distance is at least the length difference: skip early,
            // which also keeps a huge bogus key cheap.
            if word.len().abs_diff(other.len()) > limit {
                return None;
            }
            let distance = edit_distance(&word, &other);
            (distance <= limit).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance (insert, delete, substitute).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous
                .get(j)
                .map_or(usize::MAX, |d| d + usize::from(ca != cb));
            let delete = previous.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = current.get(j).map_or(usize::MAX, |d| d + 1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// `config` in conf syntax: a header, then per key a comment line
/// `# doc (kind, unit; default: X)` and its value: `key = value` for a key
/// the operator set, `# key = value` (commented out, so loading the text
/// leaves it unset) for the others, with how a derived one follows other
/// keys. The shipped `tracker.conf` is exactly
/// `render_conf(&Config::default())`: every key commented out.
pub fn render_conf(config: &Config) -> String {
    let mut out = String::from(
        "# hayate configuration: one `key = value` per line; `#` starts a comment.\n\
         # Durations: 500ms, 90s, 30m, 1h. Sizes: 512, 8KiB, 16MiB. Lists: a, b, c.\n\
         # Each key is also a flag: announce_interval = 30m is --announce-interval 30m.\n\
         # Flags override this file, which overrides the built-in defaults.\n\
         # A commented-out key holds its default; uncomment a line to set it.\n\
         # min_announce_interval, announce_jitter and peer_timeout left unset\n\
         # follow announce_interval.\n",
    );
    for key in KEYS {
        let unit = if key.unit.is_empty() {
            String::new()
        } else {
            format!(", {}", key.unit)
        };
        let default = key.shown_default();
        out.push_str(&format!(
            "\n# {} ({}{unit}; default: {default})\n",
            key.doc, key.kind
        ));
        let set = config.explicit.contains(key.name);
        let line = match key.get(config) {
            value if value.is_empty() => format!("{} =", key.name),
            value => format!("{} = {value}", key.name),
        };
        match (set, config.derivation(key.name)) {
            (true, _) => out.push_str(&format!("{line}\n")),
            (false, None) => out.push_str(&format!("# {line}\n")),
            (false, Some(how)) => out.push_str(&format!("# {line}   ({how})\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_conf;

    #[test]
    fn tracker_conf_matches_the_table() {
        let shipped = include_str!("../../tracker.conf");
        assert!(
            shipped == render_conf(&Config::default()),
            "tracker.conf is out of date with src/config/keys.rs; regenerate it with\n  \
             cargo run -- --config /dev/null --print-config > tracker.conf"
        );
    }

    #[test]
    fn names_are_unique_fields_and_flags() {
        assert_eq!(KEYS.len(), 44);
        for (i, key) in KEYS.iter().enumerate() {
            assert!(
                KEYS.iter().skip(i + 1).all(|k| k.name != key.name),
                "{}",
                key.name
            );
            assert!(
                key.name.starts_with(|c: char| c.is_ascii_lowercase())
                    && key
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                key.name
            );
            assert!(
                !key.doc.is_empty() && !key.doc.contains('\n'),
                "{}",
                key.name
            );
            assert!(std::ptr::eq(lookup(key.name).unwrap_or(&KEYS[0]), key));
        }
        assert_eq!(
            lookup("announce_interval").map(Key::flag).as_deref(),
            Some("--announce-interval")
        );
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn render_parses_back() {
        let mut changed = Config::default();
        let edits = [
            ("http_listen", "127.0.0.1:8080"),
            ("workers", "4"),
            ("announce_interval", "1h"),
            ("announce_jitter", "1500ms"),
            ("trusted_proxies", "10.0.0.0/8, 192.0.2.1"),
            ("real_ip_header", "\"X-Real-IP\""),
            ("http_max_request_bytes", "4096"),
            ("stats_allow", ""),
            ("log_level", "DEBUG"),
        ];
        for (name, text) in edits {
            let key = lookup(name).unwrap_or(&KEYS[0]);
            assert_eq!(key.set(&mut changed, text), Ok(()), "{name}");
        }
        for config in [Config::default(), changed] {
            let text = render_conf(&config);
            // Commented-out lines leave keys unset: over the defaults.
            let mut back = Config::default();
            assert_eq!(
                parse_conf(&text, "x.conf", &mut back).map_err(|e| e.to_string()),
                Ok(())
            );
            assert_eq!(back, config);
            assert_eq!(render_conf(&back), text);
        }
    }

    #[test]
    fn a_failed_set_leaves_the_config_alone() {
        let mut config = Config::default();
        let cases = [
            (
                "stripes",
                "1000",
                "must be a power of two from 1 to 1048576, got 1000",
            ),
            ("workers", "many", "expected auto or a number, got \"many\""),
            ("workers", "2000", "must be auto or at most 1024, got 2000"),
            ("stats_path", "stats", "must start with /, got \"stats\""),
            (
                "http_listen",
                "0.0.0.0:1, nope",
                "expected an address like 0.0.0.0:6969 or [::]:6969, got \"nope\"",
            ),
        ];
        for (name, text, want) in cases {
            let key = lookup(name).unwrap_or(&KEYS[0]);
            assert_eq!(key.set(&mut config, text), Err(want.to_string()), "{name}");
        }
        assert_eq!(config, Config::default());
        assert_eq!(
            lookup("workers").map(|k| k.get(&config)).as_deref(),
            Some("auto")
        );
    }

    #[test]
    fn hostile_values_are_errors_not_panics() {
        let long = "9".repeat(10_000);
        let inputs = [
            "",
            " ",
            "\"",
            "#",
            "=",
            ",",
            ",,,",
            "-1",
            "0x10",
            "NaN",
            "1e309",
            "\0",
            "é",
            "💥h",
            "1h1m",
            "ms",
            "GiB",
            "[::]",
            "::/0",
            "99999999999999999999999999",
            "18446744073709551615ms",
            "18446744073709551616",
            "18446744073709551615GiB",
            &long,
        ];
        for key in KEYS {
            for input in inputs {
                let mut config = Config::default();
                if key.set(&mut config, input).is_ok() {
                    assert_eq!(key.check(&config), Ok(()), "{} = {input:?}", key.name);
                }
            }
        }
    }

    #[test]
    fn closest_suggests_typos_only() {
        let names = || KEYS.iter().map(|k| k.name);
        let cases = [
            ("anounce_interval", Some("announce_interval")),
            ("announce_intervl", Some("announce_interval")),
            ("worker", Some("workers")),
            ("numwant_mx", Some("numwant_max")),
            ("stats_allowed", Some("stats_allow")),
            ("colour", None),
            ("", None),
            ("x", None),
        ];
        for (word, want) in cases {
            assert_eq!(closest(word, names()), want, "{word}");
        }
        let huge = "a".repeat(100_000);
        assert_eq!(closest(&huge, names()), None);
        assert_eq!(edit_distance(&['a', 'b'], &[]), 2);
        assert_eq!(edit_distance(&[], &['a']), 1);
    }
}
