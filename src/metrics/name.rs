//! Encoding labels into an Envoy stat name. The proxy-wasm ABI has no labels, so a series is
//! named `method=.=GET;.;route=.=/api/v1/upload;.;http_requests_total` and the bootstrap's
//! `stats_tags` turn each `key=.=value;.;` back into a label. Values must already be
//! label-safe (no `;`, `=`, quotes, backslashes or control bytes): route labels are sanitised
//! when built, methods and outcomes come from fixed or validated sets, statuses are numbers.
//! Which names and labels a series gets is [`super::naming`]'s.

/// Which series of a metric: the metric itself, or one of the counters an exact histogram is
/// published as (`_bucket` with an `le` label, `_sum`, `_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Whole,
    Bucket(&'a str),
    Sum,
    Count,
}

impl Part<'_> {
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Whole => "",
            Part::Bucket(_) => "_bucket",
            Part::Sum => "_sum",
            Part::Count => "_count",
        }
    }
}

/// One `key=.=value;.;` pair.
pub(crate) fn push_label(name: &mut String, key: &str, value: &str) {
    name.push_str(key);
    name.push_str("=.=");
    name.push_str(value);
    name.push_str(";.;");
}

#[cfg(test)]
mod tests {
    use super::super::contract::LabelKey;
    use super::*;

    #[test]
    fn pairs_and_tag_regexes() {
        let mut name = String::new();
        push_label(&mut name, "route", "/a");
        assert_eq!(name, "route=.=/a;.;");
        assert_eq!(LabelKey::Route.tag_regex(), r"(?:^|[.;])(route=\.=(.*?);\.;)");
        assert_eq!(Part::Bucket("1").suffix(), "_bucket");
    }
}
