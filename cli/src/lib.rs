//! The library behind the `routemeter` command: what its subcommands generate, so tests can
//! check the output against the real tools (promtool, Prometheus).

pub mod compat;
pub mod istio;
pub mod learned;
pub mod slo;

/// Every wasm filter configuration in a bootstrap (objects with a `vm_config` and a
/// `configuration`).
fn walk_wasm_filters<'a>(v: &'a Value, found: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) if o.contains_key("vm_config") && o.contains_key("configuration") => found.push(v),
        Value::Object(o) => o.values().for_each(|c| walk_wasm_filters(c, found)),
        Value::Array(a) => a.iter().for_each(|c| walk_wasm_filters(c, found)),
        _ => {}
    }
}

use routemeter::config::Config;
use serde_json::Value;

/// YAML for generated files (a value that cannot be written says so in a comment).
fn yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
}

/// The validated plugin configuration in `bytes`: a configuration itself, or an Envoy bootstrap
/// (YAML or JSON) whose wasm filter carries it (the one with `root_id: routemeter` when there
/// are several).
pub fn plugin_config(bytes: &[u8]) -> Result<Config, String> {
    let value: Value = serde_yaml_ng::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    walk_wasm_filters(&value, &mut found);
    let text = match found.as_slice() {
        [] if value.get("static_resources").is_none() => return Config::from_json(bytes).map_err(|e| e.to_string()),
        [] => return Err("no wasm filter with a configuration in this bootstrap".into()),
        [one] => one,
        many => many
            .iter()
            .find(|f| f["root_id"] == "routemeter")
            .ok_or("several wasm filters, none with root_id routemeter")?,
    };
    let json = text["configuration"]["value"].as_str().ok_or("the wasm filter's configuration has no string value")?;
    Config::from_json(json.as_bytes()).map_err(|e| format!("plugin configuration: {e}"))
}
