//! Envoy bootstraps for the tests and the bench, generated as data from the one users run
//! (`envoy/envoy.yaml`): its stats tags, listener, filter chain and the demo's plugin
//! configuration, with only ports, paths and test switches changed. A change to the shipped
//! file reaches every test; a path that no longer exists in it fails loudly here.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Envoy launcher: `$ENVOY` or the virtualenv `make deps` creates.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var_os("ENVOY").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/envoy"));
    assert!(path.exists(), "no Envoy at {}: run `make deps` (make test does)", path.display());
    path
}

/// The filter as shipped (`make wasm`), or `$ROUTEMETER_WASM`. Refuses a shipped file older
/// than cargo's build, which would test yesterday's filter.
pub fn wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ROUTEMETER_WASM") {
        return PathBuf::from(path);
    }
    let target = repo_root().join("target");
    let shipped = target.join("routemeter.wasm");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(made)) =
        (modified(&target.join("wasm32-unknown-unknown/release/routemeter.wasm")), modified(&shipped))
    {
        assert!(built <= made, "{} is older than cargo's build of the filter: run `make wasm`", shipped.display());
    }
    assert!(shipped.exists(), "no filter at {}: run `make wasm` (make test does)", shipped.display());
    shipped
}

/// The native build (`make native`): `target/libroutemeter.so`.
pub fn native_path() -> PathBuf {
    let path = repo_root().join("target/libroutemeter.so");
    assert!(path.exists(), "no native module at {}: run `make native` (make test does)", path.display());
    path
}

/// The test-only native module of the panic test (`make trap-native`).
pub fn trap_native_path() -> PathBuf {
    let path = repo_root().join("target/libroutemeter-trap.so");
    assert!(path.exists(), "no {}: run `make trap-native` (make test does)", path.display());
    path
}

/// The test-only module of the crash tests (`make trap-wasm`): the filter, and a trap on a
/// request with the header `x-routemeter-trap`. Refuses one older than the shipped module.
pub fn trap_wasm_path() -> PathBuf {
    let path = repo_root().join("target/routemeter-trap.wasm");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&path), modified(&wasm_path())) {
        (Some(trap), Some(shipped)) if trap >= shipped => path,
        _ => panic!("{} is missing or older than the filter: run `make trap-wasm` (make test does)", path.display()),
    }
}

fn read_yaml(file: &str) -> Value {
    let path = repo_root().join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `envoy/ecds/routemeter.yaml`, the shipped ECDS resource (a discovery response).
pub fn shipped_ecds_resource() -> Value {
    read_yaml("envoy/ecds/routemeter.yaml")
}

/// Writes the ECDS resource with this module, plugin configuration and failure policy (the
/// shipped one when `None`) into `dir`, the way a control plane's update must arrive for a
/// watched directory: a new file moved in at once.
pub fn write_ecds_resource(dir: &Path, module: &Path, plugin_config: &str, failure_policy: Option<&str>) {
    let mut resource = shipped_ecds_resource();
    let config = &mut resource["resources"][0]["typed_config"]["config"];
    if let Some(policy) = failure_policy {
        config["failure_policy"] = json!(policy);
    }
    config["vm_config"]["code"]["local"]["filename"] = json!(module);
    config["configuration"]["value"] = json!(plugin_config);
    // The native build: the same resource name, plugin name and configuration.
    if module.extension().is_some_and(|e| e == "so") {
        let native = native_filter(module, config);
        resource["resources"][0]["typed_config"] = native["typed_config"].clone();
    }
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let tmp = dir.with_extension("tmp.json");
    fs::write(&tmp, serde_json::to_string(&resource).expect("a resource serialises")).expect("write the resource");
    fs::rename(&tmp, dir.join("routemeter.yaml")).expect("move the resource in");
}

/// The demo's plugin configuration as shipped in `envoy/envoy.yaml`. `with_openapi: false`
/// leaves out the OpenAPI source, for hosts with no demo cluster to fetch it from.
pub fn demo_plugin_config(with_openapi: bool) -> Value {
    let mut config = Bootstrap::shipped().plugin_config();
    if !with_openapi {
        config.as_object_mut().map(|o| o.remove("openapi"));
    }
    config
}

/// A bootstrap as data. Envoy reads it as JSON ([`Bootstrap::write`]).
#[derive(Debug, Clone)]
pub struct Bootstrap(pub Value);

impl Bootstrap {
    pub fn shipped() -> Bootstrap {
        Bootstrap(read_yaml("envoy/envoy.yaml"))
    }

    /// `envoy/envoy-seeds.yaml`: the demo under seed 001's names.
    pub fn seeds() -> Bootstrap {
        Bootstrap(read_yaml("envoy/envoy-seeds.yaml"))
    }

    /// `envoy/envoy-ecds.yaml`: the filter's configuration comes from extension config
    /// discovery (a watched file, as istiod would send it).
    pub fn shipped_ecds() -> Bootstrap {
        Bootstrap(read_yaml("envoy/envoy-ecds.yaml"))
    }

    /// The ECDS bootstrap for a test: ports 0, the given upstream, the resource read from
    /// `ecds_dir/routemeter.yaml` (written with [`write_ecds_resource`]).
    pub fn for_test_ecds(demo: SocketAddr, ecds_dir: &Path) -> Bootstrap {
        let mut b = Bootstrap::shipped_ecds();
        *b.at("/admin/address/socket_address/port_value") = json!(0);
        *b.at("/static_resources/listeners/0/address/socket_address/port_value") = json!(0);
        b.set_upstream(demo.port());
        let filters = Bootstrap::hcm(b.listener())["http_filters"].as_array_mut().expect("http_filters");
        let source = &mut filters[0]["config_discovery"]["config_source"]["path_config_source"];
        source["path"] = json!(ecds_dir.join("routemeter.yaml"));
        source["watched_directory"]["path"] = json!(ecds_dir);
        b.0["stats_flush_interval"] = json!("0.2s");
        b
    }

    fn at(&mut self, pointer: &str) -> &mut Value {
        self.0.pointer_mut(pointer).unwrap_or_else(|| panic!("envoy/envoy.yaml has no {pointer}"))
    }

    fn listener(&mut self) -> &mut Value {
        self.at("/static_resources/listeners/0")
    }

    /// The shipped listener's HTTP connection manager.
    fn hcm(listener: &mut Value) -> &mut Value {
        &mut listener["filter_chains"][0]["filters"][0]["typed_config"]
    }

    fn wasm_filter(listener: &mut Value) -> &mut Value {
        let filters = Bootstrap::hcm(listener)["http_filters"].as_array_mut().expect("http_filters");
        let wasm = filters.iter_mut().find(|f| f["name"] == "envoy.filters.http.wasm").expect("a wasm filter");
        &mut wasm["typed_config"]["config"]
    }

    pub fn plugin_config(&mut self) -> Value {
        let text =
            Bootstrap::wasm_filter(self.listener())["configuration"]["value"].as_str().expect("plugin configuration");
        serde_json::from_str(text).expect("the shipped plugin configuration is JSON")
    }

    /// Ports 0 (read back from the admin API), the given upstream, this build of the filter.
    pub fn for_test(demo: SocketAddr) -> Bootstrap {
        let mut b = Bootstrap::shipped();
        *b.at("/admin/address/socket_address/port_value") = json!(0);
        *b.at("/static_resources/listeners/0/address/socket_address/port_value") = json!(0);
        b.set_upstream(demo.port());
        Bootstrap::wasm_filter(b.listener())["vm_config"]["code"]["local"]["filename"] = json!(wasm_path());
        // Exact histograms reach /stats/prometheus at the VM's flush, Envoy histograms at the
        // stats flush: flush often so tests wait little.
        b.0["stats_flush_interval"] = json!("0.2s");
        b
    }

    pub fn set_upstream(&mut self, port: u16) {
        let endpoint = "/static_resources/clusters/0/load_assignment/endpoints/0/lb_endpoints/0/endpoint";
        *self.at(&format!("{endpoint}/address/socket_address/port_value")) = json!(port);
    }

    pub fn set_plugin_config(&mut self, json: &str) {
        Bootstrap::wasm_filter(self.listener())["configuration"]["value"] = json!(json);
    }

    /// One listener per plugin `(name, configuration)`, all copies of the shipped one: the
    /// same module, `vm_id` and VM configuration, so one VM per worker runs every plugin.
    pub fn set_plugins(&mut self, plugins: &[(&str, &str)]) {
        let template = self.listener().clone();
        let listeners = plugins.iter().enumerate().map(|(i, (name, config))| {
            let mut l = template.clone();
            l["name"] = json!(format!("listener_{i}"));
            Bootstrap::hcm(&mut l)["stat_prefix"] = json!(format!("listener_{i}"));
            let wasm = Bootstrap::wasm_filter(&mut l);
            wasm["name"] = json!(name);
            wasm["configuration"]["value"] = json!(config);
            l
        });
        *self.at("/static_resources/listeners") = Value::Array(listeners.collect());
    }

    /// A route `/refused/` to a cluster on a port that was free a moment ago and is closed
    /// now: Envoy answers with local 503s.
    pub fn add_refused_route(&mut self, port: u16) {
        let routes = &mut Bootstrap::hcm(self.listener())["route_config"]["virtual_hosts"][0]["routes"];
        let routes = routes.as_array_mut().expect("routes");
        routes.insert(0, json!({ "match": { "prefix": "/refused/" }, "route": { "cluster": "refused" } }));
        let mut cluster = self.at("/static_resources/clusters/0").clone();
        cluster["name"] = json!("refused");
        cluster["load_assignment"]["cluster_name"] = json!("refused");
        self.at("/static_resources/clusters").as_array_mut().expect("clusters").push(cluster);
        let endpoint = "/static_resources/clusters/1/load_assignment/endpoints/0/lb_endpoints/0/endpoint";
        *self.at(&format!("{endpoint}/address/socket_address/port_value")) = json!(port);
    }

    /// A `stats_tags` entry cutting `name=.=value;.;` out of stat names (an attribute label's).
    pub fn add_stats_tag(&mut self, name: &str) {
        let tags = self.0["stats_config"]["stats_tags"].as_array_mut().expect("stats_tags");
        tags.push(json!({ "tag_name": name, "regex": format!(r"(?:^|[.;])({name}=\.=(.*?);\.;)") }));
    }

    pub fn add_dog_statsd(&mut self, addr: SocketAddr) {
        self.0["stats_sinks"] = json!([{
            "name": "envoy.stat_sinks.dog_statsd",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink",
                "address": { "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } }
            }
        }]);
    }

    /// The bench's Envoy: the shipped listener once per `(name, port, filter)`, all routing to
    /// `upstream`; `filter` is the wasm filter's config (`None`: no wasm filter at all).
    pub fn for_bench(admin: u16, upstream: u16, listeners: &[(&str, u16, Option<Value>)]) -> Bootstrap {
        let mut b = Bootstrap::shipped();
        *b.at("/admin/address/socket_address/port_value") = json!(admin);
        b.set_upstream(upstream);
        let template = b.listener().clone();
        let built = listeners.iter().map(|(name, port, filter)| {
            let mut l = template.clone();
            l["name"] = json!(name);
            l["address"]["socket_address"]["port_value"] = json!(port);
            Bootstrap::hcm(&mut l)["stat_prefix"] = json!(name);
            match filter {
                Some(config) => *Bootstrap::wasm_filter(&mut l) = config.clone(),
                None => {
                    let filters = Bootstrap::hcm(&mut l)["http_filters"].as_array_mut().expect("http_filters");
                    filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
                }
            }
            l
        });
        *b.at("/static_resources/listeners") = Value::Array(built.collect());
        b
    }

    /// Every listener's Wasm filter becomes the native module `library` with the same
    /// plugin name and configuration, and Envoy writes the module's metrics under their own
    /// names (`dynamic_modules_strip_custom_stat_prefix`), as it writes the Wasm filter's.
    pub fn to_native(&mut self, library: &Path) {
        self.native_listeners(library, |_| true);
    }

    /// [`Bootstrap::to_native`] for the listeners whose name `pick` takes.
    pub fn native_listeners(&mut self, library: &Path, pick: impl Fn(&str) -> bool) {
        let listeners = self.at("/static_resources/listeners").as_array_mut().expect("listeners");
        for l in listeners.iter_mut().filter(|l| l["name"].as_str().is_some_and(&pick)) {
            let filters = Bootstrap::hcm(l)["http_filters"].as_array_mut().expect("http_filters");
            for f in filters.iter_mut() {
                if f["name"] == "envoy.filters.http.wasm" {
                    *f = native_filter(library, &f["typed_config"]["config"]);
                } else if f.get("config_discovery").is_some() {
                    f["config_discovery"]["type_urls"] = json!([NATIVE_FILTER_TYPE]);
                }
            }
        }
        self.0["layered_runtime"] = native_runtime();
    }

    /// Envoy's own per-route stats on the listener `name` (what a user would turn on instead
    /// of a filter): a `stat_prefix` on each of its routes gives `vhost.<vhost>.route.<prefix>.*`
    /// request counters and an `upstream_rq_time` histogram.
    pub fn route_stats(&mut self, name: &str) {
        let listeners = self.at("/static_resources/listeners").as_array_mut().expect("listeners");
        for l in listeners.iter_mut().filter(|l| l["name"] == name) {
            let hosts = &mut Bootstrap::hcm(l)["route_config"]["virtual_hosts"];
            for host in hosts.as_array_mut().expect("virtual hosts") {
                for (i, route) in host["routes"].as_array_mut().expect("routes").iter_mut().enumerate() {
                    route["stat_prefix"] = json!(format!("route_{i}"));
                }
            }
        }
    }

    /// The shipped wasm filter config with another module, VM, root id and configuration.
    pub fn wasm_config(&mut self, module: &Path, vm_id: &str, root_id: &str, configuration: &str) -> Value {
        let mut config = Bootstrap::wasm_filter(self.listener()).clone();
        config["name"] = json!(root_id);
        config["root_id"] = json!(root_id);
        config["vm_config"]["vm_id"] = json!(vm_id);
        config["vm_config"]["code"]["local"]["filename"] = json!(module);
        config["configuration"]["value"] = json!(configuration);
        config
    }

    pub fn write(&self, path: &Path) {
        let text = serde_json::to_string_pretty(&self.0).expect("a bootstrap serialises");
        fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

const NATIVE_FILTER_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";

/// The native module's HTTP filter entry, from a Wasm filter's `config` (its plugin name and
/// configuration carry over).
pub fn native_filter(library: &Path, wasm_config: &Value) -> Value {
    json!({
        "name": "routemeter",
        "typed_config": {
            "@type": NATIVE_FILTER_TYPE,
            // The module keeps a thread of its own: never unload it.
            "dynamic_module_config": { "module": { "local": { "filename": library } }, "do_not_close": true },
            "filter_name": wasm_config["name"],
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": wasm_config["configuration"]["value"]
            }
        }
    })
}

/// The runtime layer that makes Envoy write a dynamic module's metrics without its
/// namespace and without `envoy_`, as it writes a Wasm filter's.
pub fn native_runtime() -> Value {
    json!({ "layers": [{ "name": "static", "static_layer": {
        "envoy.reloadable_features.dynamic_modules_strip_custom_stat_prefix": true
    } }] })
}
