//! The Grafana dashboard `contrib/grafana-dashboard.json` (issue 17): valid
//! JSON with what Grafana needs to import it (title, schemaVersion, the
//! `DS_PROMETHEUS` data source variable, panels with a type, a title and
//! queries), and every metric its queries name present on the stats page of
//! a running tracker: public, or private for `hayate_private_*`.
//!
//! The project has no JSON crate, so a small strict parser (RFC 8259) lives
//! here, with its own table test.

mod common;

use common::*;
use hayate::config::Mode;
use hayate::Config;

/// The dashboard, from the repository root.
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/grafana-dashboard.json"
);

/// The data source every query must use: the dashboard's variable, so it
/// imports on any Grafana whatever its Prometheus is called.
const DATASOURCE_UID: &str = "${DS_PROMETHEUS}";

/// Nesting limit of the parser, so hostile input cannot overflow the stack
/// (a dashboard nests about 8 deep).
const MAX_DEPTH: usize = 128;

/// A JSON value. Objects keep their members in order.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
    fn arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }
    /// The string at `key`, if present and a string.
    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Json::str)
    }
}

/// Parses one JSON text strictly: no comments, trailing commas, leading
/// zeros, bare control characters in strings, lone surrogates, duplicate
/// keys or trailing content. Errors say `line:column: what`.
fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser { text, i: 0 };
    let value = p.value(0)?;
    p.ws();
    if p.i != text.len() {
        return Err(p.err("trailing content"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let before = &self.text.as_bytes()[..self.i.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
        format!("{line}:{}: {what}", col + 1)
    }
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }
    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if !self.text[self.i..].starts_with(word) {
            return Err(self.err("unexpected character"));
        }
        self.i += word.len();
        Ok(value)
    }
    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.i += 1;
        let mut members: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Obj(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key"));
            }
            let at = self.i;
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                self.i = at;
                return Err(self.err(&format!("duplicate key {key:?}")));
            }
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Obj(members));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            // Runs of plain characters are copied whole; the stops are all
            // ASCII, so the slice ends on a character boundary.
            let start = self.i;
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.i += 1;
            }
            out.push_str(&self.text[start..self.i]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.i += 1;
                            out.push(self.unicode()?);
                            continue;
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    self.i += 1;
                    out.push(c);
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
    /// The character of a `\uXXXX` escape (after the `\u`), joining a
    /// surrogate pair.
    fn unicode(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if !self.text[self.i..].starts_with("\\u") {
                    return Err(self.err("lone high surrogate"));
                }
                self.i += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.err("lone high surrogate"));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err("lone low surrogate")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid code point"))
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.err("expected 4 hex digits"))?;
            value = value * 16 + digit;
            self.i += 1;
        }
        Ok(value)
    }
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
        }
        self.text[start..self.i]
            .parse()
            .map(Json::Num)
            .map_err(|_| self.err("invalid number"))
    }
    /// One or more decimal digits.
    fn digits(&mut self) -> Result<(), String> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("expected a digit"));
        }
        Ok(())
    }
}

#[test]
fn json_parser_accepts_and_rejects() {
    let s = |v: &str| Json::Str(v.into());
    let accepted: &[(&str, Json)] = &[
        ("null", Json::Null),
        (" \t\r\ntrue ", Json::Bool(true)),
        ("false", Json::Bool(false)),
        ("0", Json::Num(0.0)),
        ("-12.5e2", Json::Num(-1250.0)),
        ("1E+2", Json::Num(100.0)),
        ("2e-1", Json::Num(0.2)),
        (r#""""#, s("")),
        (r#""µs""#, s("µs")),
        (
            r#""q\"b\\s\/\b\f\n\r\t\u00e9\ud83d\ude00""#,
            s("q\"b\\s/\u{8}\u{c}\n\r\té😀"),
        ),
        ("[]", Json::Arr(vec![])),
        (
            "[1, [], {}]",
            Json::Arr(vec![Json::Num(1.0), Json::Arr(vec![]), Json::Obj(vec![])]),
        ),
        (
            r#"{"a": {"b": null}, "c": "d"}"#,
            Json::Obj(vec![
                ("a".into(), Json::Obj(vec![("b".into(), Json::Null)])),
                ("c".into(), s("d")),
            ]),
        ),
    ];
    for (text, want) in accepted {
        assert_eq!(parse(text).as_ref(), Ok(want), "{text:?}");
    }
    let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
    let rejected: &[&str] = &[
        "",
        " ",
        "[1,]",
        r#"{"a": 1,}"#,
        "[1 2]",
        "{a: 1}",
        r#"{"a" 1}"#,
        r#"{"a": 1, "a": 2}"#,
        "01",
        "-",
        "+1",
        ".5",
        "1.",
        "1e",
        "NaN",
        "Infinity",
        "nul",
        "True",
        "true false",
        "'x'",
        "// comment\n1",
        r#""abc"#,
        r#""\x""#,
        r#""\u12""#,
        r#""\ud800""#,
        r#""\ud800\u0041""#,
        r#""\udc00""#,
        "\"tab\there\"",
        "[",
        &deep,
    ];
    for text in rejected {
        assert!(parse(text).is_err(), "accepted {text:?}: {:?}", parse(text));
    }
    assert_eq!(parse("[1,\n 2,]").unwrap_err(), "2:4: unexpected character");
}

/// Every panel, the panels inside rows included (a collapsed row holds its
/// panels in its own `panels`).
fn all_panels<'a>(panels: &'a [Json], out: &mut Vec<&'a Json>) {
    for p in panels {
        out.push(p);
        if let Some(inner) = p.get("panels").and_then(Json::arr) {
            all_panels(inner, out);
        }
    }
}

/// The dashboard, parsed (panics with the parse error).
fn dashboard() -> Json {
    let text = std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    parse(&text).unwrap_or_else(|e| panic!("{DASHBOARD}:{e}"))
}

/// A panel's name for messages.
fn panel_name(p: &Json) -> String {
    format!(
        "panel {} {:?}",
        p.get("id").and_then(Json::num).unwrap_or(-1.0),
        p.text("title").unwrap_or("")
    )
}

#[test]
fn dashboard_has_what_grafana_needs_to_import_it() {
    let dash = dashboard();
    let mut problems = Vec::new();
    if dash.text("title").is_none_or(str::is_empty) {
        problems.push("no title".to_string());
    }
    // 36 is the first schema with data sources as {type, uid} objects.
    if dash
        .get("schemaVersion")
        .and_then(Json::num)
        .is_none_or(|v| v < 36.0)
    {
        problems.push("schemaVersion missing or below 36".into());
    }
    let variables = dash
        .get("templating")
        .and_then(|t| t.get("list"))
        .and_then(Json::arr)
        .unwrap_or_default();
    let has_datasource = variables.iter().any(|v| {
        v.text("name") == Some(&DATASOURCE_UID[2..DATASOURCE_UID.len() - 1])
            && v.text("type") == Some("datasource")
            && v.text("query") == Some("prometheus")
    });
    if !has_datasource {
        problems.push(format!(
            "no Prometheus data source variable {DATASOURCE_UID}"
        ));
    }
    let top = dash.get("panels").and_then(Json::arr).unwrap_or_default();
    let mut panels = Vec::new();
    all_panels(top, &mut panels);
    if panels.is_empty() {
        problems.push("no panels".into());
    }
    let mut ids = std::collections::BTreeSet::new();
    for p in &panels {
        let name = panel_name(p);
        let kind = p.text("type").unwrap_or_default();
        if kind.is_empty() || p.text("title").is_none_or(str::is_empty) {
            problems.push(format!("{name}: no type or title"));
        }
        match p.get("id").and_then(Json::num) {
            Some(id) if ids.insert(id as i64) => {}
            _ => problems.push(format!("{name}: id missing or not unique")),
        }
        let grid = |k| p.get("gridPos").and_then(|g| g.get(k)).and_then(Json::num);
        match (grid("x"), grid("y"), grid("w"), grid("h")) {
            (Some(x), Some(_), Some(w), Some(_)) if x + w <= 24.0 => {}
            _ => problems.push(format!("{name}: gridPos missing or wider than 24")),
        }
        if kind == "row" {
            continue;
        }
        let targets = p.get("targets").and_then(Json::arr).unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{name}: no targets"));
        }
        for t in targets {
            if t.text("expr").is_none_or(str::is_empty) {
                problems.push(format!("{name}: a target without expr"));
            }
            let uid = |v: &Json| {
                v.get("datasource")
                    .and_then(|d| d.text("uid"))
                    .map(str::to_owned)
            };
            if uid(t).or_else(|| uid(p)).as_deref() != Some(DATASOURCE_UID) {
                problems.push(format!(
                    "{name}: a target not on data source {DATASOURCE_UID}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{DASHBOARD}:\n{}", problems.join("\n"));
}

/// The metric names a PromQL expression uses: identifiers `hayate_[a-z0-9_]+`
/// outside string literals (label values) and not inside a longer name.
fn metric_names(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut names = Vec::new();
    let mut quote = None;
    let mut i = 0;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'"' | b'\'' | b'`')) => quote = Some(c),
            (None, _) if b[i..].starts_with(b"hayate_") && (i == 0 || !ident(b[i - 1])) => {
                let end = b[i..]
                    .iter()
                    .position(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'))
                    .map_or(b.len(), |n| i + n);
                // Both ends are ASCII, so on character boundaries.
                names.push(expr[i..end].to_string());
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_skip_label_values_and_longer_names() {
    let cases: &[(&str, &[&str])] = &[
        ("hayate_torrents", &["hayate_torrents"]),
        (
            r#"sum by (proto) (rate(hayate_a_total{job="hayate_b",x='hayate_c\'d'}[5m])) / hayate_d"#,
            &["hayate_a_total", "hayate_d"],
        ),
        ("my_hayate_x + hayate_y:rate5m", &["hayate_y"]),
        ("-sum(hayate_x_count)", &["hayate_x_count"]),
        ("up", &[]),
        ("«µ» hayate_x", &["hayate_x"]),
    ];
    for (expr, want) in cases {
        assert_eq!(metric_names(expr), *want, "{expr:?}");
    }
}

/// Whether the exposition text has metric `name`: a `# TYPE name` line or
/// a sample line `name{...} v` or `name v`.
fn has_metric(page: &str, name: &str) -> bool {
    page.lines().any(|l| match l.strip_prefix("# TYPE ") {
        Some(rest) => rest.split(' ').next() == Some(name),
        None => l
            .strip_prefix(name)
            .is_some_and(|r| r.starts_with('{') || r.starts_with(' ')),
    })
}

/// `has_metric`, also taking `x_bucket`, `x_sum` and `x_count` of a
/// histogram or summary `x` (in case the page typed but has no samples yet).
fn on_page(page: &str, name: &str) -> bool {
    has_metric(page, name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix).is_some_and(|base| {
                ["histogram", "summary"]
                    .iter()
                    .any(|kind| page.lines().any(|l| l == format!("# TYPE {base} {kind}")))
            })
        })
}

/// The stats page of a tracker started with `c` (loopback admitted).
fn stats_page(mut c: Config) -> String {
    c.stats_allow = vec!["127.0.0.0/8".parse().unwrap()];
    let s = start(c);
    let r = get(v4(&s), "/stats");
    s.shutdown();
    assert_eq!(r.status, 200, "GET /stats: {}\n{}", r.head, r.text());
    r.text()
}

/// The metric names a page declares, for failure messages.
fn declared(page: &str) -> String {
    let names: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    names.join(" ")
}

#[test]
fn dashboard_metrics_exist_on_the_stats_pages() {
    let dash = dashboard();
    // (where, expression) of every query: panel targets and variables.
    let mut queries: Vec<(String, String)> = Vec::new();
    let mut panels = Vec::new();
    all_panels(
        dash.get("panels").and_then(Json::arr).unwrap_or_default(),
        &mut panels,
    );
    for p in panels {
        for t in p.get("targets").and_then(Json::arr).unwrap_or_default() {
            if let Some(expr) = t.text("expr") {
                queries.push((panel_name(p), expr.to_string()));
            }
        }
    }
    let variables = dash
        .get("templating")
        .and_then(|t| t.get("list"))
        .and_then(Json::arr);
    for v in variables.unwrap_or_default() {
        let query = v
            .text("query")
            .or_else(|| v.get("query").and_then(|q| q.text("query")));
        if let Some(query) = query {
            queries.push((
                format!("variable {:?}", v.text("name").unwrap_or("")),
                query.into(),
            ));
        }
    }

    let public = stats_page(config());
    let db = std::env::temp_dir().join(format!(
        "hayate-dashboard-{}-{}.db",
        std::process::id(),
        unique()
    ));
    let private = stats_page(Config {
        mode: Mode::Private,
        site_password: "s".repeat(32),
        report_password: "r".repeat(32),
        database: format!("sqlite:{}", db.display()),
        ..config()
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    let (mut used_public, mut used_private) = (0, 0);
    let mut missing = Vec::new();
    for (place, expr) in &queries {
        for name in metric_names(expr) {
            let (page, which) = if name.starts_with("hayate_private_") {
                used_private += 1;
                (&private, "private")
            } else {
                used_public += 1;
                (&public, "public")
            };
            if !on_page(page, &name) {
                missing.push(format!("{place}: {name} is not on the {which} stats page"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{}\npublic page has: {}\nprivate page has: {}",
        missing.join("\n"),
        declared(&public),
        declared(&private)
    );
    // A dashboard naming no metric would pass the check above vacuously.
    assert!(
        used_public > 0,
        "the dashboard's queries name no hayate_ metric"
    );
    assert!(
        used_private > 0,
        "the dashboard's queries name no hayate_private_ metric"
    );
}
