//! The metric contract in `src/metrics/contract.rs` is the one source of truth; the README's
//! table, the shipped Envoy bootstrap and the Istio bootstrap override must agree with it.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;

use routemeter::host::MetricKind;
use routemeter::metrics::{part_name, LabelKey, Metric, Part};

fn read(path: &str) -> String {
    fs::read_to_string(testkit::bootstrap::repo_root().join(path)).unwrap()
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
fn shipped_bootstrap_has_every_tag_regex_and_no_bucket_settings() {
    let yaml = read("envoy/envoy.yaml");
    for key in LabelKey::ALL {
        let spec = format!("- tag_name: {}\n      regex: '{}'", key.as_str(), key.tag_regex());
        assert!(yaml.contains(&spec), "envoy.yaml lacks {spec:?}");
    }
    // Exact histograms (the default) take their bounds from the plugin configuration.
    assert!(!yaml.lines().any(|l| l.trim_start().starts_with("histogram_bucket_settings:")));
}

/// Envoy's tag extraction, done here with the bootstrap's regexes: every extractor searches
/// the whole name (with Envoy's `wasmcustom.` scope in front), group 2 is the tag value and
/// group 1 is cut out. Every series of every metric must come out as exactly its labels and
/// its Prometheus name, with values containing the other keys' spellings too.
#[test]
fn tag_regexes_cut_out_exactly_each_metrics_labels() {
    let extractors: Vec<(LabelKey, regex::Regex)> =
        LabelKey::ALL.iter().map(|&k| (k, regex::Regex::new(&k.tag_regex()).unwrap())).collect();
    for m in Metric::ALL {
        let values: Vec<String> = m.labels().iter().map(|k| format!("/{}/le.x/{{id}}", k.as_str())).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let mut parts = vec![Part::Whole];
        if m.kind() == MetricKind::Histogram {
            parts.extend([Part::Bucket("2.5"), Part::Sum, Part::Count]);
        }
        for part in parts {
            let name = format!("wasmcustom.{}", part_name(m, part, &values, &[]));
            let mut tags = Vec::new();
            let mut cut = vec![false; name.len()];
            for (key, re) in &extractors {
                if let Some(c) = re.captures(&name) {
                    tags.push((key.as_str(), c[2].to_string()));
                    let whole = c.get(1).unwrap();
                    cut[whole.start()..whole.end()].iter_mut().for_each(|x| *x = true);
                }
            }
            let rest: String = name.char_indices().filter(|(i, _)| !cut[*i]).map(|(_, ch)| ch).collect();
            let mut want: Vec<(&str, String)> =
                m.labels().iter().zip(&values).map(|(k, v)| (k.as_str(), v.to_string())).collect();
            if let Part::Bucket(le) = part {
                want.push(("le", le.to_string()));
            }
            want.sort();
            tags.sort();
            assert_eq!(tags, want, "{name}");
            assert_eq!(rest, format!("wasmcustom.{}{}", m.name(), part.suffix()), "{name}");
        }
    }
}

/// The README's bootstrap snippet for `"histograms": "envoy"` gives Envoy the contract's
/// default bounds, so both modes bucket alike out of the box.
#[test]
fn readme_envoy_mode_snippet_has_the_default_bounds() {
    let readme = read("README.md");
    for m in Metric::ALL.into_iter().filter(|m| m.unit().is_some()) {
        let entry = format!("- match: {{ suffix: \";.;{}\" }}\n      buckets: [{}]", m.name(), bucket_list(m));
        assert!(readme.contains(&entry), "README lacks {entry}");
    }
}

#[test]
fn istio_artefacts_match_too() {
    let yaml = |file: &str| -> serde_json::Value { serde_yaml_ng::from_str(&read(file)).unwrap() };
    let config = yaml("envoy/istio/bootstrap-override.yaml");
    let custom: serde_json::Value =
        serde_json::from_str(config["data"]["custom_bootstrap.json"].as_str().unwrap()).unwrap();
    let tags = custom["stats_config"]["stats_tags"].as_array().unwrap();
    let want: Vec<(String, String)> = LabelKey::ALL.iter().map(|k| (k.as_str().to_string(), k.tag_regex())).collect();
    let got: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t["tag_name"].as_str().unwrap().to_string(), t["regex"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, want);
    // Istio keeps only what proxyStatsMatcher includes: every metric, histogram parts too.
    let proxy = yaml("envoy/istio/proxy-config.yaml");
    let annotation = proxy["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"].as_str().unwrap();
    let matcher: serde_json::Value = serde_yaml_ng::from_str(annotation).unwrap();
    let regex = matcher["proxyStatsMatcher"]["inclusionRegexps"][0].as_str().unwrap();
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(regex, format!("wasmcustom\\..*({})(_bucket|_sum|_count)?", names.join("|")));
    let re = regex::Regex::new(&format!("^{regex}$")).unwrap();
    assert!(re.is_match("wasmcustom.route=.=/a;.;le=.=5;.;http_request_duration_milliseconds_bucket"));
}

/// `routemeter compat` output for the seed-convention demo (`envoy/envoy-seeds.yaml`) is
/// committed in `monitoring/compat/` (`make compat`) and must be what the tool writes today;
/// the bootstrap's own stats_tags must be the generated ones.
#[test]
fn compat_artefacts_are_up_to_date() {
    let config = routemeter_cli::plugin_config(read("envoy/envoy-seeds.yaml").as_bytes()).unwrap();
    for (name, text) in routemeter_cli::compat::artefacts(&config) {
        assert_eq!(
            read(&format!("monitoring/compat/{name}")),
            text,
            "monitoring/compat/{name} is stale: run `make compat`"
        );
    }
    let bootstrap: serde_json::Value = serde_yaml_ng::from_str(&read("envoy/envoy-seeds.yaml")).unwrap();
    assert_eq!(bootstrap["stats_config"]["stats_tags"], routemeter_cli::compat::stats_tags(&config));
    // Seed 001's bounds are the configuration's: nothing to add or remove.
    let none: (Vec<f64>, Vec<f64>) = (vec![], vec![]);
    assert_eq!(routemeter_cli::compat::bounds_check(&config, &[0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0]), none);
    assert_eq!(
        routemeter_cli::compat::bounds_check(&config, config.naming.profile.default_duration_bounds()),
        (vec![5.0, 25.0, 75.0, 250.0, 750.0, 7500.0], vec![])
    );
    assert_eq!(
        routemeter_cli::compat::bounds_check(&config, &[0.0025, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0]),
        (vec![2.5], vec![10000.0])
    );
}

/// The native bootstrap runs the shipped configuration, with the runtime flag that gives its
/// series the Wasm filter's names.
#[test]
fn native_bootstrap_carries_the_shipped_configuration() {
    use testkit::bootstrap::{native_runtime, Bootstrap};
    let native: serde_json::Value = serde_yaml_ng::from_str(&read("envoy/envoy-native.yaml")).unwrap();
    let hcm = &native["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filter = &hcm["http_filters"][0]["typed_config"];
    let config: serde_json::Value = serde_json::from_str(filter["filter_config"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(config, Bootstrap::shipped().plugin_config());
    assert_eq!(filter["filter_name"], "routemeter");
    assert_eq!(filter["dynamic_module_config"]["module"]["local"]["filename"], "target/libroutemeter.so");
    assert_eq!(filter["dynamic_module_config"]["do_not_close"], true);
    assert_eq!(native["layered_runtime"], native_runtime());
}
