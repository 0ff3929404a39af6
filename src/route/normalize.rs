//! The zero-config route heuristic: turns a raw path into a low-cardinality label by
//! dropping query and fragment, collapsing ID-like segments into `{id}` and capping depth.
//!
//! It only has to be good enough to keep the number of labels small and readable; the hard
//! bound on cardinality is the route cap in `table.rs`. Configured templates take precedence.

use super::path::{segments, strip_query_and_fragment};
use super::sanitize::push_sanitized;

/// What an ID-like segment becomes.
pub const ID_PLACEHOLDER: &str = "{id}";
/// Appended when a path is deeper than the configured depth.
pub const DEEPER: &str = "/*";

/// A segment this long is never a meaningful name; also bounds the label length.
const MAX_SEGMENT_LEN: usize = 64;
/// Opaque tokens (base64url ids, slugs with numbers) start at this length.
const MIN_TOKEN_LEN: usize = 20;
/// Hex strings shorter than this are kept: too many short words are valid hex (`cafe`, `add`).
const MIN_HEX_LEN: usize = 8;

/// Writes the label for `path` into `out` (cleared first). `out` is a reused buffer, so a
/// steady stream of requests normalises without allocating.
pub fn normalize_path(path: &[u8], max_depth: usize, out: &mut String) {
    out.clear();
    for (depth, seg) in segments(strip_query_and_fragment(path)).enumerate() {
        if depth == max_depth {
            out.push_str(DEEPER);
            return;
        }
        out.push('/');
        if is_id_like(seg) {
            out.push_str(ID_PLACEHOLDER);
        } else {
            push_sanitized(seg, out);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
}

/// Decimal numbers, UUIDs, hex of 8+ characters, long opaque tokens, over-long segments.
pub fn is_id_like(seg: &[u8]) -> bool {
    seg.len() > MAX_SEGMENT_LEN
        || seg.iter().all(u8::is_ascii_digit)
        || is_uuid(seg)
        || (seg.len() >= MIN_HEX_LEN && seg.iter().all(u8::is_ascii_hexdigit))
        || is_opaque_token(seg)
}

fn is_uuid(seg: &[u8]) -> bool {
    seg.len() == 36
        && seg.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Long runs of token characters that contain both letters and digits: generated ids,
/// base64url, `report-2024-11-03-final`-style slugs.
fn is_opaque_token(seg: &[u8]) -> bool {
    seg.len() >= MIN_TOKEN_LEN
        && seg.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && seg.iter().any(u8::is_ascii_digit)
        && seg.iter().any(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &[u8], depth: usize) -> String {
        let mut out = String::new();
        normalize_path(path, depth, &mut out);
        out
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &str)] = &[
            (b"/api/v1/status/123", "/api/v1/status/{id}"),
            (b"/api/v1/status/5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab", "/api/v1/status/{id}"),
            (b"/api/v1/download/deadbeef01", "/api/v1/download/{id}"),
            (b"/api/v1/download/abc", "/api/v1/download/abc"),
            (b"/api/v1/download/cafe", "/api/v1/download/cafe"),
            (b"/t/dGhpc2lzYXRva2VuMTIzNDU2Nzg", "/t/{id}"),
            (b"/blog/my-very-long-article-title", "/blog/my-very-long-article-title"),
            (b"/blog/my-very-long-article-2024", "/blog/{id}"),
            (b"/users/42/files/7?page=2#top", "/users/{id}/files/{id}"),
            (b"/", "/"),
            (b"", "/"),
            (b"?x=1", "/"),
            (b"//a///b//", "/a/b"),
            (b"/a/b/c/d/e/f/g/h", "/a/b/c/d/e/f/*"),
            (b"/a/b/c/d/e/f", "/a/b/c/d/e/f"),
            (b"/caf\xc3\xa9/\xff", "/caf__/_"),
            (b"/a%zz/b%2F", "/a%zz/b%2F"),
            (b"/q\"uote/back\\slash/new\nline", "/q_uote/back_slash/new_line"),
            (b"/{id}/x;y=z", "/_id_/x_y_z"),
            (b"*", "/*"),
        ];
        for (path, want) in cases {
            assert_eq!(norm(path, 6), *want, "path {:?}", String::from_utf8_lossy(path));
        }
    }

    #[test]
    fn long_segments_collapse() {
        let long = format!("/files/{}", "x".repeat(65));
        assert_eq!(norm(long.as_bytes(), 6), "/files/{id}");
        let edge = format!("/files/{}", "x".repeat(64));
        assert_eq!(norm(edge.as_bytes(), 6), edge);
    }

    #[test]
    fn depth_one() {
        assert_eq!(norm(b"/a/b", 1), "/a/*");
        assert_eq!(norm(b"/a", 1), "/a");
    }
}
