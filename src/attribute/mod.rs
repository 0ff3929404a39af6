//! Request attributes as labels: a query parameter or a request header becomes a label of
//! every series of a route (requests, durations, sizes, uploads and downloads, in-flight),
//! as `format` from `POST /convert?output_format=csv`. Bounded by construction: each label
//! takes one of its configured values, `other` for anything else, or its default when the
//! request has none; so a route has at most the product of its labels' value counts as label
//! sets, which the configuration caps ([`config`]). Hostile values cannot mint series.
//!
//! A request's values are one number, its combination (mixed radix over the labels, in
//! order), which is what a series is keyed by (`plugin::series`).

pub mod config;

pub use config::{AttributeLabel, RawAttribute, Source};

/// The attribute labels of one route: the configuration's global ones, then the route's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeSet {
    labels: Vec<AttributeLabel>,
}

/// The request headers the labels read, asked of the host with the request's head.
pub type HeaderValues = [Option<Vec<u8>>];

impl AttributeSet {
    pub fn new(labels: Vec<AttributeLabel>) -> AttributeSet {
        AttributeSet { labels }
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> &[AttributeLabel] {
        &self.labels
    }

    /// How many label sets the route can have: the product of the labels' value counts.
    pub fn combinations(&self) -> u64 {
        self.labels.iter().fold(1u64, |n, l| n.saturating_mul(l.choices() as u64))
    }

    /// The combination of a request: its path (for query parameters) and the values of the
    /// configuration's headers, in [`config::header_names`] order.
    pub fn combination(&self, path: &[u8], headers: &HeaderValues) -> u32 {
        let query = path.iter().position(|&b| b == b'?').and_then(|q| path.get(q + 1..)).unwrap_or_default();
        let query = query.split(|&b| b == b'#').next().unwrap_or_default();
        self.labels.iter().fold(0u32, |combo, label| {
            let raw = match &label.source {
                Source::Query(name) => query_value(query, name.as_bytes()),
                Source::Header(i) => headers.get(*i).and_then(Option::as_deref),
            };
            combo.saturating_mul(label.choices()).saturating_add(label.choice(raw))
        })
    }

    /// `(label name, value)` of every label for a combination, in order.
    pub fn values(&self, combination: u32) -> Vec<(&str, &str)> {
        let mut rest = combination;
        let mut out: Vec<(&str, &str)> = self
            .labels
            .iter()
            .rev()
            .map(|label| {
                let choice = rest % label.choices().max(1);
                rest /= label.choices().max(1);
                (label.name.as_str(), label.value(choice))
            })
            .collect();
        out.reverse();
        out
    }
}

/// The first value of `name` in a query string (`a=1&b=2`), percent-encoding as sent.
fn query_value<'a>(query: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        (kv.next() == Some(name)).then(|| kv.next().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests;
