//! Any method, path and route name through the whole plugin (start and finish of a request)
//! against a small in-memory host that checks every stat name routemeter defines: it must
//! decode into the contract's labels, with values that cannot break Envoy's tag extraction
//! or the Prometheus exposition, and the number of route labels must stay under the cap.
#![no_main]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use libfuzzer_sys::fuzz_target;
use routemeter::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore, StreamHost};
use routemeter::plugin::{configure, Plugin};
use routemeter::stream::StreamRecorder;

const CONFIG: &[u8] = br#"{"routes": [{"template": "/api/v1/status/{id}"},
    {"template": "/api/v1/upload", "methods": ["POST"], "kind": "upload"},
    {"template": "/static/*", "kind": "download"}],
  "exclude": ["/health"], "use_route_name": true, "max_routes": 8, "max_path_depth": 4}"#;

#[derive(Default)]
struct Host {
    names: RefCell<Vec<String>>,
    shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    method: Vec<u8>,
    path: Vec<u8>,
    route_name: Option<Vec<u8>>,
    status: u64,
}

impl MetricsHost for Host {
    fn define_metric(&self, _: MetricKind, name: &str) -> Result<MetricId, HostError> {
        let mut names = self.names.borrow_mut();
        names.push(name.to_string());
        Ok(MetricId(names.len() as u32 - 1))
    }
    fn increment_metric(&self, _: MetricId, _: i64) -> Result<(), HostError> {
        Ok(())
    }
    fn record_metric(&self, _: MetricId, _: u64) -> Result<(), HostError> {
        Ok(())
    }
}

impl StreamHost for Host {
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>) {
        (self.method.clone(), self.path.clone())
    }
    fn response_status(&self) -> Option<u16> {
        u16::try_from(self.status).ok().filter(|s| (100..=999).contains(s))
    }
    fn route_name(&self) -> Option<Vec<u8>> {
        self.route_name.clone()
    }
    fn request_duration_ns(&self) -> Option<u64> {
        None
    }
    fn response_body_bytes(&self) -> Option<u64> {
        None
    }
    fn now_nanos(&self) -> Option<u64> {
        Some(1)
    }
}

impl SharedStore for Host {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        Ok(self.shared.borrow().get(key).map_or((None, 0), |(v, c)| (Some(v.clone()), *c)))
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Ok(CasWrite::Conflict);
        }
        shared.insert(key.to_string(), (value.to_vec(), current + 1));
        Ok(CasWrite::Stored)
    }
}

fn check_name(name: &str, routes: &mut HashSet<String>) {
    let mut rest = name;
    while let Some(eq) = rest.find("=.=") {
        let end = rest[eq..].find(";.;").expect("a label without its terminator") + eq;
        let (key, value) = (&rest[..eq], &rest[eq + 3..end]);
        assert!(matches!(key, "method" | "route" | "status"), "key {key:?} in {name:?}");
        assert!(!value.is_empty() && !value.ends_with('.'), "value {value:?} in {name:?}");
        assert!(!value.contains("=.=") && !value.contains(";.;"), "value {value:?} in {name:?}");
        assert!(value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b';' && b != b'='), "value {value:?}");
        if key == "route" {
            routes.insert(value.to_string());
        }
        rest = &rest[end + 3..];
    }
    assert!(rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "metric name {rest:?}");
}

fuzz_target!(|data: &[u8]| {
    // Layout: [status lo, status hi, flags] then method \0 path \0 route name, repeated
    // requests separated by \n.
    let mut host = Host::default();
    let Ok(mut plugin): Result<Plugin, _> = configure(CONFIG, &host) else { panic!("fixed config rejected") };
    for request in data.split(|&b| b == b'\n').take(64) {
        let mut parts = request.splitn(3, |&b| b == 0);
        let head = parts.next().unwrap_or_default();
        host.status = u64::from(u16::from_le_bytes([*head.first().unwrap_or(&0), *head.get(1).unwrap_or(&0)]));
        let flags = head.get(2).copied().unwrap_or(0);
        host.method = head.get(3..).unwrap_or_default().to_vec();
        host.path = parts.next().unwrap_or_default().to_vec();
        host.route_name = parts.next().map(<[u8]>::to_vec);
        let mut rec = StreamRecorder::default();
        if flags & 1 == 0 {
            rec.on_request_headers(&mut plugin, &host);
        }
        rec.on_request_body(usize::from(flags));
        rec.on_response_body(usize::from(flags >> 1));
        rec.on_log(&mut plugin, &host);
        rec.on_log(&mut plugin, &host);
    }
    let mut routes = HashSet::new();
    for name in host.names.borrow().iter() {
        check_name(name, &mut routes);
    }
    // 3 templates + __other__ + the labels learning may ever publish (4 x max_routes 8).
    assert!(routes.len() <= 36, "{} route labels: {routes:?}", routes.len());
});
