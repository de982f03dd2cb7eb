//! The site's tables as they are: which columns exist and what fits in
//! them, read from `information_schema` at every connect. Servers run in
//! strict mode, where one value that does not fit fails the whole
//! statement (and so the batch, again and again): every value hayate
//! writes is fitted to its column first. Pure functions over plain
//! column descriptions; the queries live in `mod.rs`.

use std::borrow::Cow;
use std::collections::HashMap;

/// One column as `information_schema.COLUMNS` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `binary`, ...
    pub data_type: String,
    /// `COLUMN_TYPE` says `unsigned`.
    pub unsigned: bool,
    /// `CHARACTER_MAXIMUM_LENGTH`: characters (text) or bytes (binary).
    pub max_len: Option<u64>,
    /// `CHARACTER_SET_NAME`, lower case (None for non-text columns).
    pub charset: Option<String>,
}

/// The columns of the tables hayate reads and writes, by table then column
/// (names as the server spells them; looked up case-insensitively).
#[derive(Clone, Debug, Default)]
pub struct Tables(HashMap<String, HashMap<String, Column>>);

impl Tables {
    /// Adds a column (from one `information_schema` row).
    pub fn insert(&mut self, table: &str, column: &str, c: Column) {
        self.0
            .entry(table.to_ascii_lowercase())
            .or_default()
            .insert(column.to_ascii_lowercase(), c);
    }

    /// The column, when the table has it.
    pub fn get(&self, table: &str, column: &str) -> Option<&Column> {
        self.0
            .get(&table.to_ascii_lowercase())?
            .get(&column.to_ascii_lowercase())
    }

    /// True when the table has the column.
    pub fn has(&self, table: &str, column: &str) -> bool {
        self.get(table, column).is_some()
    }

    /// Every `(table, column)` of `wanted` that is missing, as
    /// `table.column` (a missing table names each of its columns).
    pub fn missing(&self, wanted: &[(&str, &[&str])]) -> Vec<String> {
        let mut out = Vec::new();
        for (table, columns) in wanted {
            for column in *columns {
                if !self.has(table, column) {
                    out.push(format!("{table}.{column}"));
                }
            }
        }
        out
    }

    /// The integer range of a column (a non-integer or unknown column
    /// gets the signed BIGINT range, which every value hayate writes is
    /// first clamped to anyway).
    pub fn range(&self, table: &str, column: &str) -> (i128, i128) {
        self.get(table, column)
            .map_or((i128::from(i64::MIN), i128::from(i64::MAX)), int_range)
    }

    /// The longest text a column takes, in characters (unknown: no limit).
    pub fn chars(&self, table: &str, column: &str) -> usize {
        self.get(table, column)
            .and_then(|c| c.max_len)
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// What characters a text column can store.
    pub fn charset(&self, table: &str, column: &str) -> Charset {
        match self.get(table, column).and_then(|c| c.charset.as_deref()) {
            Some("utf8mb4") => Charset::Full,
            Some("utf8" | "utf8mb3") => Charset::Bmp,
            // binary strings, blobs: any bytes (hayate sends UTF-8).
            None | Some("binary") => Charset::Full,
            Some(_) => Charset::Ascii,
        }
    }
}

/// The integer range of `c`'s type.
fn int_range(c: &Column) -> (i128, i128) {
    let bits = match c.data_type.as_str() {
        "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "int" | "integer" => 32,
        "bigint" => 64,
        // decimal, float, text ...: what hayate sends fits a BIGINT.
        _ => return (i128::from(i64::MIN), i128::from(i64::MAX)),
    };
    if c.unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    }
}

/// Characters a text column can store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// `utf8mb4` (or binary): anything.
    Full,
    /// `utf8mb3`: the Basic Multilingual Plane only (no emoji).
    Bmp,
    /// `latin1` and the rest: ASCII is the safe common part.
    Ascii,
}

/// `text` fitted to a column of `chars` characters in `charset`:
/// characters it cannot store become `?`, and it is cut to length.
pub fn fit_text(text: &str, chars: usize, charset: Charset) -> Cow<'_, str> {
    let storable = |c: char| match charset {
        Charset::Full => true,
        Charset::Bmp => u32::from(c) <= 0xFFFF,
        Charset::Ascii => c.is_ascii(),
    };
    let fits = text.chars().all(storable);
    match text.char_indices().nth(chars) {
        None if fits => Cow::Borrowed(text),
        Some((cut, _)) if fits => Cow::Borrowed(&text[..cut]),
        _ => Cow::Owned(
            text.chars()
                .take(chars)
                .map(|c| if storable(c) { c } else { '?' })
                .collect(),
        ),
    }
}

/// An address's text when it fits its column, else empty: a cut address
/// would be a wrong one (an IPv6 address in Gazelle's `varchar(15)`).
pub fn fit_ip(text: &str, chars: usize) -> &str {
    if text.len() <= chars {
        text
    } else {
        ""
    }
}

/// `v` clamped to `range`.
pub fn clamp(v: i128, range: (i128, i128)) -> i128 {
    v.clamp(range.0, range.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, unsigned: bool, max_len: Option<u64>, cs: Option<&str>) -> Column {
        Column {
            data_type: data_type.into(),
            unsigned,
            max_len,
            charset: cs.map(str::to_owned),
        }
    }

    #[test]
    fn integer_ranges_follow_the_type() {
        let mut t = Tables::default();
        t.insert("x", "a", col("int", true, None, None));
        t.insert("x", "b", col("int", false, None, None));
        t.insert("x", "c", col("bigint", true, None, None));
        t.insert("X", "D", col("tinyint", false, None, None));
        assert_eq!(t.range("x", "a"), (0, 4_294_967_295));
        assert_eq!(t.range("x", "b"), (-2_147_483_648, 2_147_483_647));
        assert_eq!(t.range("x", "c"), (0, i128::from(u64::MAX)));
        assert_eq!(t.range("x", "d"), (-128, 127));
        assert_eq!(
            t.range("x", "nope"),
            (i128::from(i64::MIN), i128::from(i64::MAX))
        );
    }

    #[test]
    fn text_is_cut_and_unstorable_characters_replaced() {
        assert_eq!(fit_text("abc", 51, Charset::Full), "abc");
        assert_eq!(fit_text("abcdef", 3, Charset::Full), "abc");
        assert_eq!(fit_text("a😀é", 51, Charset::Full), "a😀é");
        assert_eq!(fit_text("a😀é", 51, Charset::Bmp), "a?é");
        assert_eq!(fit_text("a😀é", 51, Charset::Ascii), "a??");
        assert_eq!(fit_text("é😀abc", 2, Charset::Ascii), "??");
    }

    #[test]
    fn an_address_that_does_not_fit_is_left_out() {
        assert_eq!(fit_ip("192.168.100.200", 15), "192.168.100.200");
        assert_eq!(fit_ip("2001:db8::1", 15), "2001:db8::1");
        assert_eq!(fit_ip("2001:db8:ffff::1234:5678", 15), "");
    }

    #[test]
    fn missing_columns_are_named() {
        let mut t = Tables::default();
        t.insert("users_main", "ID", col("int", true, None, None));
        let wanted: &[(&str, &[&str])] = &[("users_main", &["ID", "torrent_pass"]), ("t", &["a"])];
        assert_eq!(t.missing(wanted), vec!["users_main.torrent_pass", "t.a"]);
        assert_eq!(t.charset("users_main", "ID"), Charset::Full);
    }
}
