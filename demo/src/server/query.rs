//! Query-string parsing: splitting `a=1&b=2` into pairs and percent-decoding them.

/// The decoded parameters of one request, in the order they were sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses the part of a request target after `?`. Never fails: an invalid escape is
    /// kept literally, because a demo client's sloppy URL should still reach the handler.
    pub fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `key`; later repeats are ignored, as most frameworks do.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes and `+` (form encoding of a space). Bytes that do not form
/// valid UTF-8 after decoding are replaced rather than rejected.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pairs_and_keeps_first_repeat() {
        let q = Query::parse("filename=a.xlsx&delay_ms=10&delay_ms=20&flag");
        assert_eq!(q.get("filename"), Some("a.xlsx"));
        assert_eq!(q.get("delay_ms"), Some("10"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn percent_decodes_keys_and_values() {
        let q = Query::parse("file%5Fname=Q3%20report%2Bfinal.XLSX&x=a+b");
        assert_eq!(q.get("file_name"), Some("Q3 report+final.XLSX"));
        assert_eq!(q.get("x"), Some("a b"));
    }

    #[test]
    fn decodes_utf8_sequences() {
        assert_eq!(percent_decode("%C3%A9t%C3%A9.csv"), "été.csv");
    }

    #[test]
    fn keeps_invalid_escapes_literally() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn empty_query_has_no_pairs() {
        assert_eq!(Query::parse(""), Query::default());
        assert_eq!(Query::parse("&&"), Query::default());
    }
}
