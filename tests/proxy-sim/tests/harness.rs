//! The simulator checks itself: traps carry the filter's panic message, unimplemented imports
//! fail loudly by name, and the VM's memory stays bounded over many distinct paths.

use proxy_sim::{Host, Stream, Vm, WasmHost, WasmVm};

#[test]
fn a_trap_fails_with_the_filters_panic_message() {
    let host = WasmHost::new();
    let vm = host.vm("{}").unwrap();
    // The SDK's dispatcher panics on a context id it never created.
    let err = vm.call_export::<(i32, i32, i32), i32>("proxy_on_request_headers", (4242, 0, 0)).unwrap_err();
    assert!(err.starts_with("the filter trapped in proxy_on_request_headers"), "{err}");
    assert!(err.contains("filter log: routemeter panicked: panicked at"), "{err}");
    assert!(err.contains("invalid context_id"), "{err}");
}

#[test]
fn unimplemented_imports_trap_with_their_name() {
    let stubbed = WasmVm::stubbed_imports();
    assert!(stubbed.contains(&"proxy_grpc_call".to_string()), "{stubbed:?}");
    assert!(!stubbed.contains(&"proxy_http_call".to_string()));
    assert!(!stubbed.contains(&"proxy_define_metric".to_string()));
    let vm = WasmHost::new().vm("{}").unwrap();
    let err = vm.call_import("proxy_grpc_call").unwrap_err();
    assert!(
        err.contains("the filter called proxy-wasm import env.proxy_grpc_call, which the simulator does not implement"),
        "{err}"
    );
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
