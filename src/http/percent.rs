//! Percent-decoding for query strings, without allocation: split a query
//! into raw `key=value` pairs, decode a value into a caller's buffer or
//! byte by byte. `+` is the byte `+` (trackers are not HTML forms).
//! Shared by the HTTP announce/scrape decoder and anything else that reads
//! a query (BEP 41 URL data, the private control API).

/// Splits a query on `&` into raw, still percent-encoded `(key, value)`
/// pairs. The key ends at the first `=`; a pair without `=` has an empty
/// value; empty pairs (`&&`) are skipped.
pub fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let (k, v) = pair.split_at(eq);
                (k, v.get(1..).unwrap_or(&[]))
            }
            None => (pair, &[][..]),
        })
}

/// A `%` not followed by two hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Why a value could not be decoded into a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    Malformed,
    /// Well-formed, but longer than the buffer.
    TooLong,
}

/// The percent-decoded bytes of a value, one at a time. Yields
/// `Err(Malformed)` once and then ends at a malformed escape.
#[derive(Clone)]
pub struct Decoded<'a> {
    rest: &'a [u8],
}

impl<'a> Decoded<'a> {
    /// Decodes `src` lazily.
    pub fn new(src: &'a [u8]) -> Self {
        Decoded { rest: src }
    }
}

impl Iterator for Decoded<'_> {
    type Item = Result<u8, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&b, tail) = self.rest.split_first()?;
        if b != b'%' {
            self.rest = tail;
            return Some(Ok(b));
        }
        if let [hi, lo, more @ ..] = tail {
            if let (Some(hi), Some(lo)) = (hex(*hi), hex(*lo)) {
                self.rest = more;
                return Some(Ok(hi << 4 | lo));
            }
        }
        self.rest = &[];
        Some(Err(Malformed))
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `src` into `dst`. A malformed escape anywhere wins over the value
/// being too long, so the failure does not depend on the buffer size.
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, DecodeError> {
    let mut n = 0;
    let mut too_long = false;
    for byte in Decoded::new(src) {
        let byte = byte.map_err(|Malformed| DecodeError::Malformed)?;
        match dst.get_mut(n) {
            Some(slot) => *slot = byte,
            None => too_long = true,
        }
        n += 1;
    }
    if too_long {
        Err(DecodeError::TooLong)
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split() {
        let got: Vec<(&[u8], &[u8])> = pairs(b"a=1&&b&c=&=d&e=f=g&").collect();
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"a", b"1"),
            (b"b", b""),
            (b"c", b""),
            (b"", b"d"),
            (b"e", b"f=g"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn percent_decode() {
        // (encoded, buffer size, decoded)
        type Case<'a> = (&'a [u8], usize, Option<&'a [u8]>);
        let cases: &[Case] = &[
            (b"", 0, Some(b"")),
            (b"a+b", 8, Some(b"a+b")),
            (b"%41%2b%2B", 8, Some(b"A++")),
            (b"%00%ff", 2, Some(b"\x00\xff")),
            (b"abc", 2, None),
            (b"%zz", 8, None),
            (b"%4", 8, None),
            (b"%", 8, None),
            (b"ab%4g", 8, None),
        ];
        for (src, cap, want) in cases {
            let mut buf = vec![0u8; *cap];
            let got = decode(src, &mut buf).ok().map(|n| buf[..n].to_vec());
            assert_eq!(got.as_deref(), *want, "{:?}", String::from_utf8_lossy(src));
        }
    }
}
