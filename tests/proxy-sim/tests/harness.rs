//! The simulator checks itself against the module: no callback traps, every import is
//! simulated, only the callbacks routemeter uses are exported (and entered), and the VM's
//! memory stays bounded over many distinct paths.

use proxy_sim::{Host, Stream, Vm, WasmHost, WasmVm};

/// routemeter's glue has no panic path: callbacks for contexts it never saw (the SDK it no
/// longer uses trapped on those) return Continue and record nothing they should not.
#[test]
fn unknown_contexts_never_trap() {
    let host = WasmHost::new();
    let vm = host.vm("{}").unwrap();
    for export in ["proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_body"] {
        assert_eq!(vm.call_export::<(i32, i32, i32), i32>(export, (4242, 7, 1)), Ok(0), "{export}");
    }
    assert_eq!(vm.call_export::<i32, ()>("proxy_on_delete", 4243), Ok(()));
    assert_eq!(vm.call_export::<i32, ()>("proxy_on_log", 4244), Ok(()));
    // Request headers for 4242 arrived (unreadable outside a real stream: OTHER on "/"); a
    // stream first seen at its end (4244) is counted as well.
    assert_eq!(host.envoy().label_values("http_requests_in_progress", "route"), ["/"]);
    assert_eq!(
        host.envoy().counter("http_requests_total", &[("method", "OTHER"), ("route", "/"), ("status", "0")]),
        Some(1)
    );
}

/// Every host call the module makes is simulated, and it exports only the callbacks it uses:
/// a small GET enters the VM four times (request headers, a response body chunk, log, delete).
#[test]
fn only_the_callbacks_routemeter_uses_are_exported() {
    assert_eq!(WasmVm::stubbed_imports(), Vec::<String>::new());
    let host = WasmHost::new();
    let vm = host.vm("{}").unwrap();
    for absent in ["proxy_on_context_create", "proxy_on_response_headers", "proxy_on_done", "proxy_on_request_trailers"]
    {
        assert!(!vm.exports_fn(absent), "{absent}");
    }
    let before = vm.stream_entries();
    let mut s = vm.request("GET", "/a");
    s.respond(200, 10);
    s.complete();
    assert_eq!(vm.stream_entries() - before, 4);
}

#[test]
fn rejected_config_is_an_error_with_the_field() {
    let err = WasmHost::new().vm(r#"{"routes": [{"template": "x"}]}"#).err().unwrap();
    assert_eq!(err, "routes[0].template: template \"x\" must start with '/'");
}

#[test]
fn linear_memory_plateaus_over_distinct_paths() {
    let host = WasmHost::new();
    let vm = host.vm(r#"{"max_routes": 100}"#).unwrap();
    let mut sizes = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    for i in 0..20_000u32 {
        // Random words at every depth (1 to 12 segments): the worst case for learning.
        let depth = 1 + i % 12;
        let path: String = (0..depth)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let word: String = (0..6).map(|k| (b'a' + ((x >> (k * 5)) % 26) as u8) as char).collect();
                format!("/{word}")
            })
            .collect();
        let mut s = vm.request("GET", &path);
        s.respond(200, 10);
        s.complete();
        if i == 4_999 || i == 19_999 {
            sizes.push(vm.memory_bytes());
        }
    }
    // The learned routes are at their node budget long before request 5,000 (every depth
    // learned as parameters); nothing grows after.
    assert_eq!(sizes[0], sizes[1], "memory grew: {sizes:?}");
    // Labels ever published stay far under the bound of 4 x max_routes (+ `__other__`):
    // each depth's guesses are retired when it learns its positions are parameters.
    let routes = host.envoy().label_values("http_requests_total", "route");
    assert_eq!(routes.len(), 88, "{routes:?}");
}
