//! Any method, path and route name through the whole filter (every stream callback, by
//! context id) against routemeter's in-memory host, checking every stat name routemeter
//! defines: it must decode into the contract's labels, with values that cannot break Envoy's
//! tag extraction or the Prometheus exposition, and the number of route labels must stay
//! under the cap. Envoy would refuse no call.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use routemeter::filter::Filter;
use routemeter::host::memory::{MemoryHost, StreamFacts};

const CONFIG: &[u8] = br#"{"routes": [{"template": "/api/v1/status/{id}"},
    {"template": "/api/v1/upload", "methods": ["POST"], "kind": "upload"},
    {"template": "/static/*", "kind": "download"}],
  "exclude": ["/health"], "use_route_name": true, "max_routes": 8, "max_path_depth": 4}"#;

fn check_name(name: &str, routes: &mut HashSet<String>) {
    let mut rest = name;
    while let Some(eq) = rest.find("=.=") {
        let end = rest[eq..].find(";.;").expect("a label without its terminator") + eq;
        let (key, value) = (&rest[..eq], &rest[eq + 3..end]);
        assert!(matches!(key, "method" | "route" | "status" | "le" | "quantile"), "key {key:?} in {name:?}");
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
    let host = MemoryHost::new();
    let mut filter = Filter::new();
    filter.configure(1, "", CONFIG, &host).expect("the fixed configuration");
    for (context, request) in (2..).zip(data.split(|&b| b == b'\n').take(64)) {
        let mut parts = request.splitn(3, |&b| b == 0);
        let head = parts.next().unwrap_or_default();
        let flags = head.get(2).copied().unwrap_or(0);
        let facts = StreamFacts {
            method: head.get(3..).unwrap_or_default().to_vec(),
            path: parts.next().unwrap_or_default().to_vec(),
            route_name: parts.next().map(<[u8]>::to_vec),
            status: Some(u16::from_le_bytes([*head.first().unwrap_or(&0), *head.get(1).unwrap_or(&0)])),
            headers_readable: true,
            request_body_bytes: Some(u64::from(flags)),
            ..StreamFacts::default()
        };
        let stream = host.on_stream(&facts);
        if flags & 1 == 0 {
            filter.request_headers(context, &stream);
        }
        filter.request_body(context, usize::from(flags));
        filter.response_body(context, usize::from(flags >> 1));
        filter.log(context, &stream);
        filter.log(context, &stream);
        filter.delete(context, &host);
    }
    filter.tick(1, &host);
    assert_eq!(host.refused(), Vec::<String>::new());
    let mut routes = HashSet::new();
    for (_, name, _) in host.stats() {
        check_name(&name, &mut routes);
    }
    // 3 templates + __other__ + the labels learning may ever issue (4 x max_routes 8).
    assert!(routes.len() <= 36, "{} route labels: {routes:?}", routes.len());
});
