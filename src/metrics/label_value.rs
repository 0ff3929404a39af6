//! Which bytes may appear in a label value (a route, an attribute value), and how anything
//! else is made safe.
//!
//! A route label travels inside an Envoy stat name (`route=.=<value>;.;`), is cut out by a
//! `stats_tags` regex and printed in the Prometheus exposition. So a value must never hold
//! `;` or `=` (they would end the tag early), `"`, `\` or control bytes (they would break the
//! exposition), nor non-ASCII bytes. The allowed set is RFC 3986's path characters minus
//! `;` and `=`; everything else becomes `_`.

/// Replacement for any byte outside the allowed set.
pub const REPLACEMENT: char = '_';

/// True for the bytes a route label may contain verbatim.
pub fn is_label_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b':'
                | b'@'
                | b'/'
        )
}

/// Makes a finished label safe to end a tag value: Envoy 1.40 drops trailing dots from tag
/// values (measured), so `/a/c.` and `/a/c` would become two stats with the same labels, a
/// duplicate series in the exposition. A final `.` becomes `_`.
pub fn finish_label(label: &mut String) {
    if label.ends_with('.') {
        label.pop();
        label.push(REPLACEMENT);
    }
}

/// Appends `bytes` to `out`, replacing every unsafe byte with [`REPLACEMENT`].
pub fn push_sanitized(bytes: &[u8], out: &mut String) {
    // Almost every segment is safe as it is: one copy.
    if let Some(safe) = bytes.iter().all(|&b| is_label_safe(b)).then(|| std::str::from_utf8(bytes).ok()).flatten() {
        out.push_str(safe);
        return;
    }
    for &b in bytes {
        out.push(if is_label_safe(b) { b as char } else { REPLACEMENT });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_everything_that_could_break_a_tag_or_the_exposition() {
        let mut out = String::new();
        push_sanitized(b"a;b=c\"d\\e\nf g{h}\xff\xc3\xa9%zz", &mut out);
        assert_eq!(out, "a_b_c_d_e_f_g_h____%zz");
    }

    #[test]
    fn a_label_never_ends_in_a_dot() {
        for (label, want) in [("/q/c.", "/q/c_"), ("/q/c..", "/q/c._"), (".", "_"), ("/a.b", "/a.b"), ("/", "/")] {
            let mut l = label.to_string();
            finish_label(&mut l);
            assert_eq!(l, want);
        }
    }

    #[test]
    fn keeps_rfc3986_path_characters() {
        let mut out = String::new();
        let keep = b"/AZaz09-._~%!$&'()*+,:@";
        push_sanitized(keep, &mut out);
        assert_eq!(out.as_bytes(), keep);
    }
}
