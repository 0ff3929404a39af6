//! A strict reader of the Prometheus text exposition format (0.0.4), as Envoy serves it on
//! `/stats/prometheus`. Strict on purpose: tests use it to prove that no label value routemeter
//! emits can break the format, so a malformed line is an error with its line number.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line, self.reason, self.text)
    }
}

impl std::error::Error for ParseError {}

/// A cumulative histogram series.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`, ascending, ending with `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// Cumulative count of the bucket with upper bound `le`.
    pub fn bucket(&self, le: f64) -> Option<u64> {
        self.buckets.iter().find(|(b, _)| *b == le).map(|(_, c)| *c)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Metric family name -> `counter`, `gauge`, `histogram`, ...
    pub types: HashMap<String, String>,
}

impl Exposition {
    pub fn parse(text: &str) -> Result<Exposition, ParseError> {
        let mut out = Exposition::default();
        let mut seen = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let fail = |reason: &str| ParseError { line: i + 1, reason: reason.to_string(), text: line.to_string() };
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut parts = comment.split_whitespace();
                if parts.next() == Some("TYPE") {
                    let (Some(name), Some(kind), None) = (parts.next(), parts.next(), parts.next()) else {
                        return Err(fail("malformed TYPE line"));
                    };
                    if !is_metric_name(name) {
                        return Err(fail("bad metric name in TYPE"));
                    }
                    out.types.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            let sample = parse_sample(line).map_err(|r| fail(&r))?;
            // Two samples with one name and label set are two stats Envoy merged into one
            // series: a scraper keeps only one of them.
            if !seen.insert((sample.name.clone(), sample.labels.clone())) {
                return Err(fail("duplicate series"));
            }
            out.samples.push(sample);
        }
        Ok(out)
    }

    /// The value of the series with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want = to_labels(labels);
        self.samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
    }

    /// All series of one sample name.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Every series of `name` as (values of `keys`) -> value, to compare with a ledger tally.
    pub fn counters(&self, name: &str, keys: &[&str]) -> BTreeMap<Vec<String>, u64> {
        self.series(name)
            .map(|s| (keys.iter().map(|k| s.labels.get(*k).cloned().unwrap_or_default()).collect(), s.value as u64))
            .collect()
    }

    /// Distinct values of `key` across the samples named `name`.
    pub fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self.series(name).filter_map(|s| s.labels.get(key).cloned()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The histogram family `name` with exactly these labels (besides `le`).
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<Histogram> {
        let want = to_labels(labels);
        let bucket_name = format!("{name}_bucket");
        let mut buckets: Vec<(f64, u64)> = self
            .series(&bucket_name)
            .filter_map(|s| {
                let mut l = s.labels.clone();
                let le = parse_value(&l.remove("le")?).ok()?;
                (l == want).then_some((le, s.value as u64))
            })
            .collect();
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Histogram {
            buckets,
            sum: self.get(&format!("{name}_sum"), labels)?,
            count: self.get(&format!("{name}_count"), labels)? as u64,
        })
    }
}

/// Runs `promtool check metrics` on an exposition page: `Err` when promtool cannot parse it,
/// else its lint findings, one per line (empty: none).
pub fn promtool_check(text: &str) -> Result<Vec<String>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool: {e}"))?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("promtool: {e}"))?;
    written.transpose().map_err(|e| format!("promtool stdin: {e}"))?;
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Ok(Vec::new()),
        // promtool's exit code for lint findings (the page parsed).
        Some(3) => Ok(report.lines().map(str::to_string).collect()),
        _ => Err(report),
    }
}

fn to_labels(labels: &[(&str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let key = &rest[..eq];
            if !is_label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            let (value, after) = parse_quoted(&rest[eq + 1..])?;
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("duplicate label {key:?}"));
            }
            rest = after.strip_prefix(',').unwrap_or(after);
            if !rest.starts_with('}') && after == rest {
                return Err("expected ',' or '}' after a label".into());
            }
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("expected a space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample { name: name.to_string(), labels, value })
}

/// Reads `"..."` with the exposition's escapes (`\\`, `\"`, `\n`); returns value and rest.
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('"').ok_or("label value must be quoted")?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("bad escape {other:?}")),
            },
            '\n' => return Err("raw newline in label value".into()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE http_requests_total counter\n\
http_requests_total{method=\"GET\",route=\"/a/{id}\",status=\"200\"} 3\n\
http_requests_total{method=\"POST\",route=\"/q\\\"x\\\\y\\nz\",status=\"0\"} 1\n\
# TYPE d histogram\n\
d_bucket{route=\"/a\",le=\"1\"} 0\n\
d_bucket{route=\"/a\",le=\"+Inf\"} 2\n\
d_bucket{route=\"/a\",le=\"2.5\"} 1\n\
d_sum{route=\"/a\"} 7.5\n\
d_count{route=\"/a\"} 2\n\
up 1 1700000000000\n";

    #[test]
    fn parses_samples_labels_escapes_and_histograms() {
        let e = Exposition::parse(PAGE).unwrap();
        assert_eq!(e.samples.len(), 8);
        assert_eq!(e.types["http_requests_total"], "counter");
        assert_eq!(
            e.get("http_requests_total", &[("method", "GET"), ("route", "/a/{id}"), ("status", "200")]),
            Some(3.0)
        );
        assert_eq!(
            e.get("http_requests_total", &[("method", "POST"), ("route", "/q\"x\\y\nz"), ("status", "0")]),
            Some(1.0)
        );
        let h = e.histogram("d", &[("route", "/a")]).unwrap();
        assert_eq!(h.buckets, vec![(1.0, 0), (2.5, 1), (f64::INFINITY, 2)]);
        assert_eq!((h.sum, h.count), (7.5, 2));
        assert_eq!(h.bucket(2.5), Some(1));
        assert_eq!(e.get("up", &[]), Some(1.0));
        assert_eq!(e.label_values("http_requests_total", "method"), vec!["GET", "POST"]);
    }

    #[test]
    fn rejects_what_would_break_a_scraper() {
        let bad: &[(&str, &str)] = &[
            ("a{b=\"c} 1", "line 1: unterminated label value: \"a{b=\\\"c} 1\""),
            ("a{b=\"c\\q\"} 1", "line 1: bad escape Some((2, 'q')): \"a{b=\\\"c\\\\q\\\"} 1\""),
            ("a{b=c} 1", "line 1: label value must be quoted: \"a{b=c} 1\""),
            ("a{1b=\"c\"} 1", "line 1: bad label name \"1b\": \"a{1b=\\\"c\\\"} 1\""),
            ("a-b 1", "line 1: bad metric name \"a-b\": \"a-b 1\""),
            ("a x", "line 1: bad value \"x\": \"a x\""),
            ("a{b=\"1\",b=\"2\"} 1", "line 1: duplicate label \"b\": \"a{b=\\\"1\\\",b=\\\"2\\\"} 1\""),
            ("a{b=\"1\"c=\"2\"} 1", "line 1: expected ',' or '}' after a label: \"a{b=\\\"1\\\"c=\\\"2\\\"} 1\""),
            ("a 1 2 3", "line 1: trailing fields: \"a 1 2 3\""),
            ("a{b=\"1\"} 1\na{b=\"1\"} 2", "line 2: duplicate series: \"a{b=\\\"1\\\"} 2\""),
        ];
        for (page, want) in bad {
            assert_eq!(Exposition::parse(page).unwrap_err().to_string(), *want, "{page}");
        }
    }
}
