//! What a single path segment looks like, before anything is learned about its position:
//! an identifier (collapsed into `{id}` at once), a word shaped like an API's own vocabulary,
//! or a plain value that only traffic can classify.
//!
//! These are priors, not decisions: the learner ([`super::learn`]) uses them to weigh the
//! evidence a position collects. They look at the label-safe form of a segment (what the
//! label would hold), so a label read back as a path classifies the same way. They must be cheap (they run on every segment of every
//! request) and never allocate.

/// What an ID-like segment becomes in a label (also every learned parameter).
pub const PARAM: &str = "{id}";
/// Ends a label whose path is deeper than `max_path_depth`: any rest.
pub const REST: &str = "*";

/// A segment this long is never a meaningful name; also bounds label length.
pub const MAX_SEGMENT_LEN: usize = 64;
/// Opaque tokens (base64url ids, slugs with numbers) start at this length.
const MIN_TOKEN_LEN: usize = 20;
/// Hex strings shorter than this are kept: too many short words are valid hex (`cafe`, `add`).
const MIN_HEX_LEN: usize = 8;
/// Random-looking tokens (`cus_NffrFeUfNV2Hib`) are recognised from this many alphanumerics.
const MIN_RANDOM_LEN: usize = 10;

/// How a segment looks on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Numbers, UUIDs, hex, long or random-looking tokens: a parameter wherever it appears.
    Id,
    /// Shaped like an API's vocabulary (`search`, `pullRequests`, `console-ports`,
    /// `steps_completed`): weak evidence for a parameter position.
    StaticLike,
    /// Anything else (`alice`, `hello-world`, `NODA_RUNO`, `main`): only traffic can tell.
    Plain,
}

pub fn shape(seg: &[u8]) -> Shape {
    if is_id(seg) {
        Shape::Id
    } else if looks_static(seg) {
        Shape::StaticLike
    } else {
        Shape::Plain
    }
}

/// `shape(seg) == Shape::Id`, without the vocabulary checks (the request path needs no more).
/// The length limit applies to the whole segment, suffix included: no literal is ever
/// longer than [`MAX_SEGMENT_LEN`].
pub fn is_id(seg: &[u8]) -> bool {
    seg.len() > MAX_SEGMENT_LEN || is_id_like(strip_format(seg))
}

/// Decimal numbers, dates, UUIDs, hex of 8+ characters, long opaque tokens, random-looking
/// tokens, over-long segments. (A date that is an API version, `/2010-04-01/`, is learned
/// as one: see `learn`.)
pub fn is_id_like(seg: &[u8]) -> bool {
    seg.len() > MAX_SEGMENT_LEN
        || (!seg.is_empty() && seg.iter().all(u8::is_ascii_digit))
        || is_date(seg)
        || is_uuid(seg)
        || (seg.len() >= MIN_HEX_LEN && seg.iter().all(u8::is_ascii_hexdigit))
        || is_opaque_token(seg)
        || is_random_token(seg)
}

fn is_uuid(seg: &[u8]) -> bool {
    seg.len() == 36
        && seg.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Long runs of token characters that contain both letters and digits: generated ids,
/// base64url, `report-2024-11-03-final`-style slugs.
fn is_opaque_token(seg: &[u8]) -> bool {
    seg.len() >= MIN_TOKEN_LEN
        && seg.iter().all(|&b| is_token_byte(b))
        && seg.iter().any(u8::is_ascii_digit)
        && seg.iter().any(u8::is_ascii_alphabetic)
}

/// Character class of an alphanumeric byte: lower, upper, digit.
fn class(b: u8) -> u8 {
    if b.is_ascii_lowercase() {
        0
    } else if b.is_ascii_uppercase() {
        1
    } else {
        2
    }
}

/// Tokens whose alphanumerics switch between lower case, upper case and digits more than a
/// word ever does: base62 ids (`cus_NffrFeUfNV2Hib`, `4iV5W9uYEdYUVa79Axb7Rh`). camelCase
/// names switch twice per capital (`GetContentById`: 7 in 14) but almost never put two
/// capitals together; random base62 switches about every other character and does.
fn is_random_token(seg: &[u8]) -> bool {
    if seg.len() < MIN_RANDOM_LEN || !seg.iter().all(|&b| is_token_byte(b)) {
        return false;
    }
    let (mut alnum, mut switches, mut digits, mut upper_pairs, mut prev) = (0usize, 0usize, 0usize, 0usize, None);
    for &b in seg.iter().filter(|b| b.is_ascii_alphanumeric()) {
        alnum += 1;
        digits += usize::from(b.is_ascii_digit());
        let c = class(b);
        match prev {
            Some(p) if p != c => switches += 1,
            Some(1) if c == 1 => upper_pairs += 1,
            _ => {}
        }
        prev = Some(c);
    }
    if digits > 0 {
        alnum >= MIN_RANDOM_LEN && switches >= 5 && switches * 3 >= alnum
    } else {
        // Letters only: case runs are longer, but capitals come in pairs.
        alnum >= MIN_RANDOM_LEN + 2 && switches >= 5 && switches * 4 >= alnum && upper_pairs >= 2
    }
}

/// Action and singleton words that REST APIs put where an id could also go
/// (`/orders/search`, `/users/me`, `/releases/latest`).
const ACTION_WORDS: &[&str] = &[
    "activate",
    "activity",
    "all",
    "approve",
    "archive",
    "batch",
    "bulk",
    "cancel",
    "clone",
    "close",
    "config",
    "confirm",
    "count",
    "current",
    "deactivate",
    "default",
    "disable",
    "download",
    "enable",
    "export",
    "find",
    "history",
    "import",
    "info",
    "latest",
    "login",
    "logout",
    "lookup",
    "me",
    "merge",
    "metadata",
    "mine",
    "new",
    "next",
    "open",
    "pause",
    "preview",
    "previous",
    "private",
    "public",
    "publish",
    "query",
    "refresh",
    "register",
    "reject",
    "reset",
    "restore",
    "resume",
    "retry",
    "schema",
    "search",
    "self",
    "settings",
    "start",
    "status",
    "stop",
    "subscribe",
    "summary",
    "sync",
    "test",
    "token",
    "unpublish",
    "unsubscribe",
    "upload",
    "validate",
    "verify",
];

/// Format suffixes of RPC-style resources (`Calls.json`); stripped before the checks.
const FORMAT_SUFFIXES: &[&str] = &[".json", ".xml", ".csv"];

/// `Calls.json` -> `Calls`, `{Sid}.json` values -> the id.
fn strip_format(seg: &[u8]) -> &[u8] {
    FORMAT_SUFFIXES.iter().find_map(|s| seg.strip_suffix(s.as_bytes())).filter(|s| !s.is_empty()).unwrap_or(seg)
}

/// API vocabulary: action and version words, camelCase and PascalCase (`GetContentById`,
/// `chat.postMessage`, `Accounts.json`), plural nouns (`console-ports`, `secrets`),
/// lower-case snake_case compounds (`steps_completed`). Names and slugs rarely look like
/// this, ids never (they are checked first).
pub fn looks_static(seg: &[u8]) -> bool {
    let seg = strip_format(seg);
    let Ok(text) = std::str::from_utf8(seg) else { return false };
    if ACTION_WORDS.iter().any(|w| w.eq_ignore_ascii_case(text)) || is_version_word(text) {
        return true;
    }
    let camel = seg.windows(2).any(|w| matches!(w, [a, b] if a.is_ascii_lowercase() && b.is_ascii_uppercase()));
    camel || is_pascal_word(seg) || is_plural_word(seg) || is_snake_compound(seg)
}

/// `v1`, `v2beta1`, `2.0`, `2010-04-01`, `api`, `apis`, `rest`: the namespaces APIs put their
/// routes under.
pub fn is_version_word(seg: &str) -> bool {
    let b = seg.as_bytes();
    ["api", "apis", "rest"].iter().any(|w| w.eq_ignore_ascii_case(seg))
        || (matches!(b, [b'v' | b'V', d, ..] if d.is_ascii_digit()) && b.iter().all(u8::is_ascii_alphanumeric))
        || is_version_number(b)
}

/// `3`, `2.0`, `1.1`: a short number that may be an API version.
pub fn is_version_number(b: &[u8]) -> bool {
    let mut parts = b.split(|&c| c == b'.');
    let major = parts.next().unwrap_or_default();
    (1..=2).contains(&major.len())
        && major.iter().all(u8::is_ascii_digit)
        && parts.all(|p| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit))
}

/// `2010-04-01`.
pub fn is_date(b: &[u8]) -> bool {
    b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// `Local`, `Today`: one capitalised word (names in paths are lower case; keys upper case).
fn is_pascal_word(seg: &[u8]) -> bool {
    matches!(seg, [first, rest @ ..] if rest.len() >= 2 && first.is_ascii_uppercase() && rest.iter().all(u8::is_ascii_lowercase))
}

/// `secrets`, `console-ports`, `pull_requests`, `Calls`; not `status`, `access`, `bus`.
fn is_plural_word(seg: &[u8]) -> bool {
    let [first, rest @ .., before, b's'] = seg else { return false };
    seg.len() >= 4
        && !matches!(before, b's' | b'u')
        && before.is_ascii_lowercase()
        && first.is_ascii_alphabetic()
        && rest.iter().chain([before, &b's']).all(|&b| b.is_ascii_lowercase() || b == b'-' || b == b'_')
}

/// `steps_completed`, `dial_participant`: two or more lower-case parts joined by `_`, at
/// least five letters in all.
fn is_snake_compound(seg: &[u8]) -> bool {
    let letters = seg.iter().filter(|b| b.is_ascii_lowercase()).count();
    seg.first().is_some_and(u8::is_ascii_lowercase)
        && seg.contains(&b'_')
        && letters >= 5
        && seg
            .split(|&b| b == b'_')
            .all(|p| !p.is_empty() && p.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let cases: &[(&[u8], Shape)] = &[
            (b"123", Shape::Id),
            (b"5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab", Shape::Id),
            (b"deadbeef01", Shape::Id),
            (b"dGhpc2lzYXRva2VuMTIzNDU2Nzg", Shape::Id),
            (b"cus_NffrFeUfNV2Hib", Shape::Id),
            (b"4iV5W9uYEdYUVa79Axb7Rh", Shape::Id),
            (b"HFuQJaGJqnMiislTqCcyrV", Shape::Id),
            (b"iIXTgbqnAWkLNigrWVUODZ", Shape::Id),
            (b"GetContentByTagAndType", Shape::StaticLike),
            (b"XMLHttpRequest", Shape::StaticLike),
            (b"pi_3MtwBwLkdIwHu7ix28a3tqPa", Shape::Id),
            (b"getV2Users", Shape::StaticLike),
            (b"getUserByID", Shape::StaticLike),
            (b"report-2024-11-03-final", Shape::Id),
            (b"search", Shape::StaticLike),
            (b"Search", Shape::StaticLike),
            (b"me", Shape::StaticLike),
            (b"GetContentById", Shape::StaticLike),
            (b"chat.postMessage", Shape::StaticLike),
            (b"uiModifications", Shape::StaticLike),
            (b"console-ports", Shape::StaticLike),
            (b"secrets", Shape::StaticLike),
            (b"steps_completed", Shape::StaticLike),
            (b"v1beta1", Shape::StaticLike),
            (b"api", Shape::StaticLike),
            (b"Calls.json", Shape::StaticLike),
            (b"Local.json", Shape::StaticLike),
            (b"IncomingPhoneNumbers", Shape::StaticLike),
            (b"report.xlsx", Shape::Plain),
            (b"12345.json", Shape::Id),
            (b"2010-04-01", Shape::Id),
            (b"PROJ-123", Shape::Plain),
            (b"sha256", Shape::Plain),
            (b"status", Shape::StaticLike),
            (b"access", Shape::Plain),
            (b"alice", Shape::Plain),
            (b"hello-world", Shape::Plain),
            (b"NODA_RUNO", Shape::Plain),
            (b"main", Shape::Plain),
            (b"cafe", Shape::Plain),
            (b"abc", Shape::Plain),
            (b"my-very-long-article-title", Shape::Plain),
            (b"a_b", Shape::Plain),
            (b"", Shape::Plain),
            (b"caf\xc3\xa9", Shape::Plain),
        ];
        for (seg, want) in cases {
            assert_eq!(shape(seg), *want, "{:?}", String::from_utf8_lossy(seg));
        }
    }

    #[test]
    fn long_segments_are_ids() {
        assert!(is_id_like("x".repeat(65).as_bytes()));
        assert!(!is_id_like("x".repeat(64).as_bytes()));
        // The limit counts the format suffix too: no literal is ever longer than 64 bytes.
        assert_eq!(shape(format!("{}.json", "x".repeat(61)).as_bytes()), Shape::Id);
        assert_eq!(shape(format!("{}.json", "x".repeat(59)).as_bytes()), Shape::Plain);
    }
}
