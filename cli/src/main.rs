//! `routemeter`: the command users run next to the filter.
//!
//! `routemeter openapi FILE` turns an OpenAPI document (JSON or YAML, OpenAPI 3.x or Swagger
//! 2.0) into routemeter's plugin configuration, one route template per path, most specific
//! first: the same templates the filter loads when `openapi` points it at the upstream, as
//! static configuration that can be reviewed and versioned.
//!
//! `routemeter slo FILE` turns the `slos` of a configuration (or of the Envoy bootstrap that
//! carries it) into Prometheus recording and burn-rate alert rules and a Grafana dashboard
//! ([`slo`]).

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use routemeter::config::Config;
use routemeter::openapi;
use routemeter_cli::{compat, istio, learned, plugin_config, slo};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "routemeter", version, about = "routemeter's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the plugin configuration for an OpenAPI document's routes.
    Openapi {
        /// The document (JSON or YAML); `-` reads standard input.
        file: PathBuf,
        /// Prefix every path with this instead of the path of the document's server URL
        /// (`/` for none).
        #[arg(long)]
        base_path: Option<String>,
        /// Add the templates to this configuration: its own routes stay first (they win),
        /// templates it already has are not repeated, its other fields are kept.
        #[arg(long)]
        into: Option<PathBuf>,
    },
    /// The Istio artefacts (WasmPlugin, bootstrap override, pod annotations) for the routemeter
    /// of an Envoy bootstrap.
    Istio {
        /// The Envoy bootstrap carrying routemeter (YAML or JSON).
        file: PathBuf,
        /// The folder to write wasmplugin.yaml, bootstrap-override.yaml, proxy-config.yaml to.
        #[arg(long)]
        out: PathBuf,
    },
    /// What dashboards and alerts written for in-app metrics need to work unchanged on the
    /// names a configuration publishes (`names`): the bootstrap's stats_tags, recording
    /// rules for sums in seconds, Istio pieces; and which duration bounds to add.
    Compat {
        /// The Envoy bootstrap carrying routemeter (YAML or JSON), or the plugin configuration.
        file: PathBuf,
        /// The folder to write stats-tags.yaml, rules.yml and the Istio pieces to.
        #[arg(long)]
        out: PathBuf,
        /// The duration bounds (seconds) the dashboards' histograms have, comma-separated;
        /// default: the profile's client default.
        #[arg(long, value_delimiter = ',')]
        bounds: Option<Vec<f64>>,
    },
    /// Route templates from what the proxies learned.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// Prometheus rules (SLIs, burn-rate alerts) and a Grafana dashboard for the `slos` of a
    /// configuration.
    Slo {
        /// The Envoy bootstrap carrying routemeter (YAML or JSON), or the plugin configuration.
        file: PathBuf,
        /// Write the rules here instead of standard output.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Write the Grafana dashboard here.
        #[arg(long)]
        dashboard: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// Print a configuration with the route labels a fleet learned, as templates: read from
    /// Prometheus, those with traffic, without the early guesses learning replaced.
    Learned {
        /// The Prometheus that scrapes the proxies (`http://prometheus:9090`).
        #[arg(long)]
        prometheus: String,
        /// Labels with requests in this window are kept.
        #[arg(long, default_value = "24h")]
        since: String,
        /// A label another one generalises is a guess unless it had requests in this window.
        #[arg(long, default_value = "1h")]
        recent: String,
        /// The request counter and its route label (other names: `routemeter compat`).
        #[arg(long, default_value = "http_requests_total")]
        metric: String,
        #[arg(long, default_value = "route")]
        label: String,
        /// Add the templates to this configuration (its own routes stay first).
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Slo { file, rules, dashboard } = &cli.command {
        return match slo_files(file, rules.as_ref(), dashboard.as_ref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("routemeter: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Compat { file, out, bounds } = &cli.command {
        return match compat_files(file, out, bounds.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("routemeter: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Istio { file, out } = &cli.command {
        return match istio_files(file, out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("routemeter: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match cli.command {
        Command::Slo { .. } | Command::Istio { .. } | Command::Compat { .. } => return ExitCode::SUCCESS,
        Command::Routes { command: RoutesCommand::Learned { prometheus, since, recent, metric, label, into } } => {
            learned::observe(&prometheus, (&metric, &label), (&since, &recent)).and_then(|observed| {
                let templates = learned::freeze(&observed);
                let base = read_config(into.as_ref())?;
                let config = with_templates(base, templates.iter().map(|t| json!({ "template": t.text() })).collect())?;
                Ok(Output { config, skipped: Vec::new() })
            })
        }
        Command::Openapi { file, base_path, into } => read(&file).and_then(|doc| {
            let base = read_config(into.as_ref())?;
            convert(&doc, base_path.as_deref(), base)
        }),
    };
    match result {
        Ok(Output { config, skipped }) => {
            for (path, why) in skipped {
                eprintln!("skipped {path}: {why}");
            }
            println!("{config}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("routemeter: {e}");
            ExitCode::FAILURE
        }
    }
}

fn istio_files(file: &PathBuf, out: &std::path::Path) -> Result<(), String> {
    let bootstrap: Value = serde_yaml_ng::from_slice(&read(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
    for (name, text) in istio::artefacts(&bootstrap)? {
        let path = out.join(name);
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn compat_files(file: &PathBuf, out: &std::path::Path, bounds: Option<&[f64]>) -> Result<(), String> {
    let config = plugin_config(&read(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
    let want = bounds.unwrap_or(config.naming.profile.default_duration_bounds());
    let (missing, extra) = compat::bounds_check(&config, want);
    let list = |bounds: &[f64]| bounds.iter().map(f64::to_string).collect::<Vec<_>>().join(", ");
    if !missing.is_empty() {
        eprintln!(
            "routemeter: duration_buckets_ms lacks {}: add them, or le bounds in seconds will not be those of the dashboards' histograms",
            list(&missing)
        );
    }
    if !extra.is_empty() {
        eprintln!(
            "routemeter: duration_buckets_ms has {} the dashboards' histograms do not: histogram_quantile will interpolate differently",
            list(&extra)
        );
    }
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (name, text) in compat::artefacts(&config) {
        let path = out.join(name);
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn slo_files(file: &PathBuf, rules: Option<&PathBuf>, dashboard: Option<&PathBuf>) -> Result<(), String> {
    let config = plugin_config(&read(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
    let write = |path: &PathBuf, text: String| fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()));
    match rules {
        Some(path) => write(path, slo::rules(&config.slos))?,
        None => print!("{}", slo::rules(&config.slos)),
    }
    dashboard.map_or(Ok(()), |path| write(path, slo::dashboard(&config.slos)))
}

fn read(file: &PathBuf) -> Result<Vec<u8>, String> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin().read_to_end(&mut bytes).map_err(|e| format!("standard input: {e}"))?;
        return Ok(bytes);
    }
    fs::read(file).map_err(|e| format!("{}: {e}", file.display()))
}

fn read_config(file: Option<&PathBuf>) -> Result<Value, String> {
    let Some(file) = file else { return Ok(json!({})) };
    let bytes = read(file)?;
    // Validate it the way the filter will, so errors name the field.
    Config::from_json(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))
}

struct Output {
    /// Pretty-printed configuration.
    config: String,
    skipped: Vec<(String, String)>,
}

/// The configuration for `doc` (JSON, or YAML when it does not parse as JSON), added to
/// `base`.
fn convert(doc: &[u8], base_path: Option<&str>, base: Value) -> Result<Output, String> {
    let value: Value = match serde_json::from_slice(doc) {
        Ok(v) => v,
        Err(json_err) => serde_yaml_ng::from_slice(doc)
            .map_err(|yaml_err| format!("neither JSON ({json_err}) nor YAML ({yaml_err})"))?,
    };
    let routes = openapi::from_value(value, base_path).map_err(|e| e.to_string())?;
    let rules = routes
        .rules
        .iter()
        .map(|r| match r.methods {
            None => json!({ "template": r.template.text() }),
            Some(methods) => json!({ "template": r.template.text(), "methods": methods.names() }),
        })
        .collect();
    let config = with_templates(base, rules)?;
    Ok(Output { config, skipped: routes.skipped })
}

/// `base` with `routes` added after its own (they win), templates it has not repeated, as
/// the filter would accept it.
fn with_templates(mut base: Value, routes: Vec<Value>) -> Result<String, String> {
    let existing: Vec<Value> = base.get("routes").and_then(Value::as_array).cloned().unwrap_or_default();
    let known: Vec<&str> = existing.iter().filter_map(|r| r.get("template").and_then(Value::as_str)).collect();
    let mut all = existing.clone();
    all.extend(routes.into_iter().filter(|r| !r["template"].as_str().is_some_and(|t| known.contains(&t))));
    base["routes"] = Value::Array(all);
    let config = serde_json::to_string_pretty(&base).map_err(|e| e.to_string())?;
    // What the filter would say about it.
    Config::from_json(config.as_bytes()).map_err(|e| format!("the result is not a valid configuration: {e}"))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(out: &Output) -> Vec<String> {
        let v: Value = serde_json::from_str(&out.config).unwrap();
        v["routes"].as_array().unwrap().iter().map(|r| r["template"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn json_and_yaml_give_the_same_routes_most_specific_first() {
        let json = br#"{"openapi": "3.0.3", "servers": [{"url": "https://api.example.com/v1"}],
            "paths": {"/users/{id}": {"get": {}}, "/users/me": {"get": {}}, "/files/{name}.{ext}": {"get": {}}}}"#;
        let yaml = b"openapi: 3.0.3\nservers:\n  - url: https://api.example.com/v1\npaths:\n  /users/{id}:\n    get: {}\n  /users/me:\n    get: {}\n  /files/{name}.{ext}:\n    get: {}\n";
        let want = ["/v1/users/me", "/v1/files/{name}.{ext}", "/v1/users/{id}"];
        assert_eq!(templates(&convert(json, None, json!({})).unwrap()), want);
        assert_eq!(templates(&convert(yaml, None, json!({})).unwrap()), want);
        assert_eq!(
            templates(&convert(yaml, Some("/"), json!({})).unwrap()),
            ["/users/me", "/files/{name}.{ext}", "/users/{id}"]
        );
    }

    #[test]
    fn into_keeps_the_configured_routes_first_and_the_other_fields() {
        let base = json!({"routes": [{"template": "/v1/users/{id}", "kind": "download"}], "exclude": ["/health"]});
        let doc = br#"{"swagger": "2.0", "basePath": "/v1", "paths": {"/users/{id}": {}, "/orders": {}}}"#;
        let out = convert(doc, None, base).unwrap();
        let v: Value = serde_json::from_str(&out.config).unwrap();
        assert_eq!(templates(&out), ["/v1/users/{id}", "/v1/orders"]);
        assert_eq!(v["routes"][0]["kind"], "download");
        assert_eq!(v["exclude"], json!(["/health"]));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            convert(b"{\"paths\": {}}", None, json!({})).err().unwrap(),
            "not an OpenAPI document: no `openapi` or `swagger` field"
        );
        assert!(convert(b"\x00\x01", None, json!({})).err().unwrap().starts_with("neither JSON ("));
    }

    #[test]
    fn a_public_api_description_becomes_a_valid_configuration() {
        let doc = fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/apis/stripe.json")).unwrap();
        let out = convert(&doc, None, json!({})).unwrap();
        let t = templates(&out);
        assert_eq!(t.len(), 305);
        assert_eq!(t.first().map(String::as_str), Some("/v1/account"));
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    }
}
