//! Path templates such as `/api/v1/status/{job_id}`, `/static/*` or OpenAPI's
//! `/Accounts/{AccountSid}/Calls/{Sid}.json`: parsing (with errors a config author can act
//! on) and matching one path segment at a time without allocating.

use crate::metrics::label_value::is_label_safe;

/// One `/`-separated piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(Box<str>),
    /// `{name}`: exactly one non-empty path segment.
    Param,
    /// Text and parameters in one segment (`{Sid}.json`, `{base}...{head}`).
    Pattern(Pattern),
}

/// A segment of literal pieces and non-empty parameters, never two parameters in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Literal pieces in order; `starts_with_param` / `ends_with_param` say where the
    /// parameters sit around them (one between each two pieces).
    pieces: Vec<Box<str>>,
    starts_with_param: bool,
    ends_with_param: bool,
}

impl Pattern {
    /// True when `seg` fits: every literal piece in order, every parameter non-empty.
    pub fn matches(&self, seg: &[u8]) -> bool {
        let mut at = 0;
        let last = self.pieces.len().saturating_sub(1);
        for (i, piece) in self.pieces.iter().enumerate() {
            let piece = piece.as_bytes();
            let need_gap = usize::from(i > 0 || self.starts_with_param);
            if i == last && !self.ends_with_param {
                // The last piece ends the segment.
                return seg.len() >= at + need_gap + piece.len() && seg.ends_with(piece);
            }
            if i == 0 && !self.starts_with_param {
                if !seg.starts_with(piece) {
                    return false;
                }
                at = piece.len();
                continue;
            }
            let from = at + need_gap;
            match seg.get(from..).and_then(|rest| find(rest, piece)) {
                Some(pos) => at = from + pos + piece.len(),
                None => return false,
            }
        }
        // Ends with a parameter: something must be left for it.
        seg.len() > at
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A parsed template. Its text doubles as the route label, so it only holds label-safe
/// bytes (plus the braces of its parameters).
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
            } else if piece.contains(['{', '}']) {
                segments.push(parse_params(text, piece)?);
            } else if piece.contains('*') {
                return Err(format!(
                    "template {text:?}: segment {piece:?} mixes text with '*'; '*' must be a whole last segment"
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

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Ends in `*`.
    pub fn has_rest(&self) -> bool {
        self.rest
    }

    /// Sort key for "more specific first" (OpenAPI: concrete paths before templated ones):
    /// segment by segment, literal before pattern before parameter, `*` last.
    pub fn specificity(&self) -> Vec<u8> {
        let mut key: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Pattern(_) => 1,
                Segment::Param => 2,
            })
            .collect();
        key.push(if self.rest { 3 } else { 0 });
        key
    }
}

/// A segment with `{name}` parameters: a plain parameter, or a pattern.
fn parse_params(text: &str, piece: &str) -> Result<Segment, String> {
    let mut pieces = Vec::new();
    let mut params = Vec::new();
    let mut rest = piece;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            Some(i) if rest.as_bytes().get(i) == Some(&b'{') => {
                let Some(close) = rest[i..].find('}').map(|c| i + c) else {
                    return Err(format!("template {text:?}: segment {piece:?} has an unclosed '{{'"));
                };
                let name = &rest[i + 1..close];
                if !is_param_name(name) {
                    return Err(format!(
                        "template {text:?}: parameter {{{name}}} must be a name of letters, digits, '_', '-' and '.'"
                    ));
                }
                if i == 0 && params.last() == Some(&pieces.len()) {
                    return Err(format!(
                        "template {text:?}: segment {piece:?} has two parameters with no text between them"
                    ));
                }
                if i > 0 {
                    pieces.push(literal(text, piece, &rest[..i])?);
                }
                params.push(pieces.len());
                rest = &rest[close + 1..];
            }
            Some(_) => return Err(format!("template {text:?}: segment {piece:?} has a '}}' without '{{'")),
            None => {
                pieces.push(literal(text, piece, rest)?);
                rest = "";
            }
        }
    }
    if pieces.is_empty() {
        return Ok(Segment::Param);
    }
    let starts_with_param = params.first() == Some(&0);
    let ends_with_param = params.last() == Some(&pieces.len());
    Ok(Segment::Pattern(Pattern { pieces, starts_with_param, ends_with_param }))
}

fn literal(text: &str, piece: &str, lit: &str) -> Result<Box<str>, String> {
    if lit.contains('*') || !lit.bytes().all(is_label_safe) {
        return Err(format!(
            "template {text:?}: segment {piece:?} has characters outside RFC 3986 path characters (or ';', '=', '*')"
        ));
    }
    Ok(lit.into())
}

/// OpenAPI allows more in parameter names than identifiers (`{enterprise-team}`).
fn is_param_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::super::templates::TemplateSet;
    use super::*;

    fn matches(template: &str, path: &str) -> bool {
        let set = TemplateSet::new([Template::parse(template).unwrap()].iter());
        set.find(path.as_bytes(), |_| true).is_some()
    }

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
            ("/Calls/{Sid}.json", "/Calls/CA123.json", true),
            ("/Calls/{Sid}.json", "/Calls/.json", false),
            ("/Calls/{Sid}.json", "/Calls/CA123.xml", false),
            ("/compare/{base}...{head}", "/compare/main...dev", true),
            ("/compare/{base}...{head}", "/compare/main...", false),
            ("/compare/{base}...{head}", "/compare/...dev", false),
            ("/compare/{base}...{head}", "/compare/a....b", true),
            ("/x/v{version}", "/x/v2", true),
            ("/x/v{version}", "/x/v", false),
            ("/x/{a}-issues-{b}.zip", "/x/r-issues-7.zip", true),
            ("/x/{a}-issues-{b}.zip", "/x/r-issues-.zip", false),
        ];
        for (template, path, want) in cases {
            assert_eq!(matches(template, path), *want, "{template} vs {path}");
        }
    }

    #[test]
    fn parse_errors_are_exact() {
        let cases: &[(&str, &str)] = &[
            ("api/v1", "template \"api/v1\" must start with '/'"),
            ("/a/*/b", "template \"/a/*/b\": '*' is only allowed as the last segment"),
            ("/a/{}", "template \"/a/{}\": parameter {} must be a name of letters, digits, '_', '-' and '.'"),
            ("/a/{x y}", "template \"/a/{x y}\": parameter {x y} must be a name of letters, digits, '_', '-' and '.'"),
            ("/a/{x", "template \"/a/{x\": segment \"{x\" has an unclosed '{'"),
            ("/a/x}", "template \"/a/x}\": segment \"x}\" has a '}' without '{'"),
            ("/a/{x}{y}", "template \"/a/{x}{y}\": segment \"{x}{y}\" has two parameters with no text between them"),
            ("/a/x*", "template \"/a/x*\": segment \"x*\" mixes text with '*'; '*' must be a whole last segment"),
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

    #[test]
    fn specificity_puts_literals_first() {
        let mut t: Vec<Template> = ["/users/{id}", "/users/*", "/users/me", "/users/{id}.json"]
            .iter()
            .map(|s| Template::parse(s).unwrap())
            .collect();
        t.sort_by(|a, b| a.specificity().cmp(&b.specificity()).then_with(|| a.text().cmp(b.text())));
        let order: Vec<&str> = t.iter().map(Template::text).collect();
        assert_eq!(order, ["/users/me", "/users/{id}.json", "/users/{id}", "/users/*"]);
    }
}
