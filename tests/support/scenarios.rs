//! `scenarios! { fn name(host) { ... } }`: each behavioural scenario becomes three tests,
//! `native` (the Rust core linked into the test), `wasm` (the compiled module under
//! wasmtime) and `same_series` (both, every series and the number of `define_metric`
//! calls compared: a difference is a bug in one of them).

/// Declares scenarios `fn name(host: &impl Host) { ... }`; each becomes a module with three
/// tests: `native`, `wasm`, and `same_series` (both hosts, every series compared).
#[allow(unused_macros)]
macro_rules! scenarios {
    ($($(#[$doc:meta])* fn $name:ident($host:ident) $body:block)*) => {$(
        $(#[$doc])*
        mod $name {
            use super::*;
            use $crate::support::mem_host::NativeHost;
            use proxy_sim::WasmHost;

            pub(super) fn scenario<H: Host>($host: &H) $body

            #[test]
            fn native() {
                scenario(&NativeHost::new());
            }

            #[test]
            fn wasm() {
                scenario(&WasmHost::new());
            }

            #[test]
            fn same_series() {
                let (native, wasm) = (NativeHost::new(), WasmHost::new());
                scenario(&native);
                scenario(&wasm);
                assert_eq!(native.envoy().series(), wasm.envoy().series());
                assert_eq!(native.envoy().define_calls(), wasm.envoy().define_calls(), "define_metric calls");
            }
        }
    )*};
}

#[allow(unused_imports)]
pub(crate) use scenarios;
