//! Path templates such as `/api/v1/status/{job_id}` or `/static/*`: parsing (with errors a
//! config author can act on) and matching against a request path without allocating.

use super::path::{segments, strip_query_and_fragment};
use super::sanitize::is_label_safe;

/// One `/`-separated piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    /// `{name}`: exactly one non-empty path segment.
    Param,
}

/// A parsed template. Its text doubles as the route label, so it only holds label-safe bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: Box<str>,
    segments: Vec<Segment>,
    /// A trailing `*`: zero or more further segments.
    rest: bool,
}

const MAX_TEMPLATE_LEN: usize = 256;

impl Template {
    /// Parses a template; the error says what is wrong with it (the caller adds the field).
    pub fn parse(text: &str) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err(format!("template {text:?} must start with '/'"));
        }
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(format!("template is longer than {MAX_TEMPLATE_LEN} bytes"));
        }
        if text.contains(['?', '#']) {
            return Err(format!(
                "template {text:?} must not contain a query or fragment ('?', '#'): they are ignored when matching"
            ));
        }
        if text.ends_with('.') {
            return Err(format!(
                "template {text:?} must not end with '.': Envoy drops a trailing dot from label values"
            ));
        }
        let pieces: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(pieces.len());
        let mut rest = false;
        for (i, piece) in pieces.iter().enumerate() {
            if *piece == "*" {
                if i + 1 != pieces.len() {
                    return Err(format!("template {text:?}: '*' is only allowed as the last segment"));
                }
                rest = true;
            } else if let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if !is_param_name(name) {
                    return Err(format!(
                        "template {text:?}: parameter {{{name}}} must be a name of letters, digits and '_'"
                    ));
                }
                segments.push(Segment::Param);
            } else if piece.contains(['{', '}', '*']) {
                return Err(format!(
                    "template {text:?}: segment {piece:?} mixes text with '{{', '}}' or '*'; a parameter or wildcard must be a whole segment"
                ));
            } else if !piece.bytes().all(is_label_safe) {
                return Err(format!(
                    "template {text:?}: segment {piece:?} has characters outside RFC 3986 path characters (or ';', '=')"
                ));
            } else {
                segments.push(Segment::Literal((*piece).into()));
            }
        }
        Ok(Template { text: text.into(), segments, rest })
    }

    /// The template as written: the route label for requests it matches.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when `path` (query and fragment are ignored; empty segments are skipped, so
    /// `/a//b/` matches `/a/b`) fits the template.
    pub fn matches(&self, path: &[u8]) -> bool {
        let mut actual = segments(strip_query_and_fragment(path));
        for expected in &self.segments {
            let Some(seg) = actual.next() else { return false };
            if let Segment::Literal(lit) = expected {
                if lit.as_bytes() != seg {
                    return false;
                }
            }
        }
        self.rest || actual.next().is_none()
    }
}

fn is_param_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/api/v1/upload", "/api/v1/upload", true),
            ("/api/v1/upload", "/api/v1/upload/", true),
            ("/api/v1/upload", "/api/v1/upload?name=a.xlsx", true),
            ("/api/v1/upload", "/api/v1/upload#frag", true),
            ("/api/v1/upload", "//api//v1/upload", true),
            ("/api/v1/upload", "/api/v1/uploads", false),
            ("/api/v1/upload", "/api/v1", false),
            ("/api/v1/upload", "/api/v1/upload/x", false),
            ("/api/v1/status/{job_id}", "/api/v1/status/123", true),
            ("/api/v1/status/{job_id}", "/api/v1/status/", false),
            ("/api/v1/status/{job_id}", "/api/v1/status/1/2", false),
            ("/static/*", "/static", true),
            ("/static/*", "/static/app.js", true),
            ("/static/*", "/static/css/site.css?v=3", true),
            ("/static/*", "/statics/x", false),
            ("/", "/", true),
            ("/", "", true),
            ("/", "/x", false),
            ("/*", "/anything/at/all", true),
        ];
        for (template, path, want) in cases {
            let t = Template::parse(template).unwrap();
            assert_eq!(t.matches(path.as_bytes()), *want, "{template} vs {path}");
        }
    }

    #[test]
    fn parse_errors_are_exact() {
        let cases: &[(&str, &str)] = &[
            ("api/v1", "template \"api/v1\" must start with '/'"),
            ("/a/*/b", "template \"/a/*/b\": '*' is only allowed as the last segment"),
            ("/a/{}", "template \"/a/{}\": parameter {} must be a name of letters, digits and '_'"),
            ("/a/{x-y}", "template \"/a/{x-y}\": parameter {x-y} must be a name of letters, digits and '_'"),
            (
                "/a/id{x}",
                "template \"/a/id{x}\": segment \"id{x}\" mixes text with '{', '}' or '*'; a parameter or wildcard must be a whole segment",
            ),
            (
                "/a b",
                "template \"/a b\": segment \"a b\" has characters outside RFC 3986 path characters (or ';', '=')",
            ),
            (
                "/a?x=1",
                "template \"/a?x=1\" must not contain a query or fragment ('?', '#'): they are ignored when matching",
            ),
        ];
        for (template, want) in cases {
            assert_eq!(Template::parse(template).unwrap_err(), *want);
        }
        assert_eq!(
            Template::parse("/v1/file.").unwrap_err(),
            "template \"/v1/file.\" must not end with '.': Envoy drops a trailing dot from label values"
        );
        let long = format!("/{}", "a".repeat(300));
        assert_eq!(Template::parse(&long).unwrap_err(), "template is longer than 256 bytes");
    }
}
