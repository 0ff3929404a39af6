//! Byte-level views of a request path. Paths arrive as raw bytes (they may not be UTF-8),
//! and nothing here allocates: these run on every request.

/// The path without `?query` and `#fragment`.
pub fn strip_query_and_fragment(path: &[u8]) -> &[u8] {
    path.split(|&b| b == b'?' || b == b'#').next().unwrap_or(path)
}

/// The non-empty `/`-separated segments of a path.
pub fn segments(path: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    path.split(|&b| b == b'/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_query_and_fragment() {
        assert_eq!(strip_query_and_fragment(b"/a/b?x=1#f"), b"/a/b");
        assert_eq!(strip_query_and_fragment(b"/a/b#f?x"), b"/a/b");
        assert_eq!(strip_query_and_fragment(b"/a/b"), b"/a/b");
        assert_eq!(strip_query_and_fragment(b"?"), b"");
    }

    #[test]
    fn splits_segments() {
        let got: Vec<&[u8]> = segments(b"//a/b//c/").collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(segments(b"/").count(), 0);
    }
}
