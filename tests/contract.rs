//! The metric contract in `src/metrics/contract.rs` is the one source of truth; the README's
//! table, the shipped Envoy bootstrap and the Istio bootstrap override must agree with it.

use std::fs;

use routemeter::host::MetricKind;
use routemeter::metrics::{LabelKey, Metric};

fn read(path: &str) -> String {
    fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn kind(m: Metric) -> &'static str {
    match m.kind() {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    }
}

/// YAML/JSON spelling of a bucket list: `1, 2.5, 5, ...` (f64 Display writes 1e8 as 100000000).
fn bucket_list(m: Metric) -> String {
    let unit = m.unit().unwrap();
    unit.buckets().iter().map(|b| format!("{b}")).collect::<Vec<_>>().join(", ")
}

#[test]
fn readme_table_lists_every_metric_with_its_type_and_labels() {
    let readme = read("README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    for m in Metric::ALL {
        let labels = match m.labels() {
            [] => "-".to_string(),
            keys => keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
        };
        let prefix = format!("| `{}` | {} | {labels} | ", m.name(), kind(m));
        assert_eq!(rows.iter().filter(|r| r.starts_with(&prefix)).count(), 1, "README row starting {prefix:?}");
    }
    let metric_rows = rows.iter().filter(|r| Metric::ALL.iter().any(|m| r.starts_with(&format!("| `{}` |", m.name()))));
    assert_eq!(metric_rows.count(), Metric::ALL.len());
}

#[test]
fn shipped_bootstrap_has_every_tag_regex_and_bucket_setting() {
    let yaml = read("envoy/envoy.yaml");
    for key in LabelKey::ALL {
        let spec = format!("- tag_name: {}\n      regex: '{}'", key.as_str(), key.tag_regex());
        assert!(yaml.contains(&spec), "envoy.yaml lacks {spec:?}");
    }
    let lines: Vec<&str> = yaml.lines().collect();
    let anchor = |name: &str| -> String {
        let line = lines.iter().find(|l| l.contains(&format!("&{name} ["))).unwrap();
        line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()].to_string()
    };
    for m in Metric::ALL.into_iter().filter(|m| m.unit().is_some()) {
        let suffix = format!("- match: {{ suffix: \";.;{}\" }}", m.name());
        let i = lines.iter().position(|l| l.trim() == suffix).unwrap_or_else(|| panic!("envoy.yaml lacks {suffix}"));
        let buckets = lines[i + 1].trim().strip_prefix("buckets: ").unwrap();
        let list = match buckets.strip_prefix('*') {
            Some(alias) => anchor(alias),
            None => buckets.rsplit_once('[').map(|(_, l)| l.trim_end_matches(']').to_string()).unwrap(),
        };
        assert_eq!(list, bucket_list(m), "{}", m.name());
    }
}

#[test]
fn istio_bootstrap_override_matches_too() {
    let json = read("envoy/istio/bootstrap-override.yaml");
    for key in LabelKey::ALL {
        let regex = key.tag_regex().replace('\\', "\\\\");
        let spec = format!("\"tag_name\": \"{}\",", key.as_str());
        assert!(json.contains(&spec), "{spec}");
        assert!(json.contains(&format!("\"regex\": \"{regex}\"")), "{regex}");
    }
    for m in Metric::ALL.into_iter().filter(|m| m.unit().is_some()) {
        let entry = format!("{{ \"match\": {{ \"suffix\": \";.;{}\" }},\n            \"buckets\": [{}] }}", m.name(), bucket_list(m));
        assert!(json.contains(&entry), "{entry}");
    }
}
